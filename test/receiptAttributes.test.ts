// The App Store receipt reader's attribute loop (appstore/appReceipt.ts attributesOf, nextAttribute) reads DER attributes by a
// fast path that makes no elements. It must give exactly what the general way gives (ber.ts's readElement, as
// the loop read every attribute before): the same attributes, or the same error, for real receipts and for
// receipts with bytes of their content changed at random (lengths, tags, truncations).
import { beforeAll, describe, expect, it } from 'vitest';
import { ReceiptContentError, attributesOf, nextAttribute, receiptContent, stringStart } from '../src/appstore/appReceipt.js';
import { BerError, TAG, readElement, smallInteger, type BerElement } from '../src/appstore/ber.js';
import { appleSigner, type ReceiptSpec } from './support/appleReceipts.js';

/** The loop as it read every attribute before the fast path (the reference). */
function generalAttributes(buf: Buffer, set: BerElement, visit: (type: number, value: BerElement) => void): void {
  if (set.tag !== TAG.set) throw new ReceiptContentError('receipt content is not a SET of attributes');
  for (let at = set.start; at < set.end;) {
    const attribute = readElement(buf, at, set.end, 1);
    if (attribute.tag !== TAG.sequence) throw new BerError('attribute is not a SEQUENCE');
    const type = readElement(buf, attribute.start, attribute.end, 2);
    const version = readElement(buf, type.next, attribute.end, 2);
    const value = readElement(buf, version.next, attribute.end, 2);
    if (version.tag !== TAG.integer || value.tag !== TAG.octetString) throw new BerError('attribute is not { type, version, value }');
    visit(smallInteger(buf, type), value);
    at = attribute.next;
  }
}

/** The reader's loop (attributesOf, nextAttribute: its fast path first), as a visit. */
function readerAttributes(buf: Buffer, set: BerElement, visit: (type: number, value: BerElement) => void): void {
  const c = attributesOf(set);
  while (nextAttribute(buf, c)) visit(c.type, { tag: TAG.octetString, constructed: false, start: c.start, end: c.end, next: c.end });
}

type Walk = typeof generalAttributes;

const STRING_TAGS = [TAG.utf8String, TAG.ia5String, 0x13, 0x1a];

/** Where a value's string starts, the general way (the reference of stringStart). */
function generalStringStart(buf: Buffer, start: number, end: number): number {
  const element = readElement(buf, start, end);
  if (element.next !== end) throw new BerError('value has trailing bytes');
  if (!STRING_TAGS.includes(element.tag)) throw new BerError('expected a string value');
  return element.start;
}

/** Each value of the content and of its in-app purchases (the general walk), read as a string both ways. */
function stringStarts(content: Buffer, read: typeof stringStart): unknown[] {
  const seen: unknown[] = [];
  const each = (set: BerElement): void =>
    generalAttributes(content, set, (type, value) => {
      try {
        seen.push([type, read(content, value.start, value.end)]);
      } catch (error) {
        seen.push([type, error instanceof Error ? `${error.name}: ${error.message}` : String(error)]);
      }
      if (type === 17) {
        try {
          each(readElement(content, value.start, value.end));
        } catch {
          // an in-app SET that does not read is the attribute loop's concern, tested above
        }
      }
    });
  try {
    each(readElement(content, 0));
  } catch (error) {
    seen.push(error instanceof Error ? error.name : String(error));
  }
  return seen;
}

/** What a walk over the content's SET gives: every attribute visited (in order), then its error if it stopped. */
function walk(each: Walk, content: Buffer): unknown[] {
  const seen: unknown[] = [];
  try {
    const set = readElement(content, 0);
    each(content, set, (type, value) => seen.push([type, value]));
  } catch (error) {
    seen.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  }
  return seen;
}

const T0 = Date.UTC(2025, 0, 1);

describe('receipt attributes', () => {
  let contents: Buffer[];
  beforeAll(async () => {
    const signer = await appleSigner();
    const purchase = (i: number) => ({
      productId: `com.example.${'p'.repeat(i * 40)}`,
      transactionId: String(1000 + i),
      originalTransactionId: '1000',
      purchaseMs: T0 + i,
      expiresMs: i % 2 ? null : T0 + i * 1000,
      quantity: 1,
    });
    const specs: ReceiptSpec[] = [
      { environment: 'Production', bundleId: 'com.example.app', creationMs: T0, purchases: [purchase(0)] },
      // long values (two-octet lengths) and padding
      { environment: 'ProductionSandbox', bundleId: 'com.example.app', creationMs: T0, appVersion: '1.0', purchases: [1, 2, 3, 7].map(purchase), base64Length: 9000 },
      { bundleId: 'com.example.app', creationMs: T0, purchases: [] },
    ];
    contents = (await Promise.all(specs.map((s) => signer.receipt(s)))).map((t) => receiptContent(Buffer.from(t, 'base64')));
  });

  it('reads real receipts as the general way does', () => {
    for (const content of contents) {
      const fast = walk(readerAttributes, content);
      expect(fast.length).toBeGreaterThan(2);
      expect(fast.every((v) => Array.isArray(v))).toBe(true);
      expect(fast).toEqual(walk(generalAttributes, content));
    }
  });

  it('gives the same attributes or the same error for content with bytes changed', () => {
    let seed = 11;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    const special = [TAG.integer, TAG.octetString, TAG.sequence, TAG.set, 0x80, 0x81, 0x82, 0x83, 0x00, 0x7f, 0xff];
    let errors = 0;
    for (const content of contents) {
      for (let k = 0; k < 1500; k++) {
        const changed = Buffer.from(content);
        for (let j = 1 + random(3); j > 0; j--) {
          const at = random(Math.min(changed.length, k % 2 ? 200 : changed.length));
          const how = random(3);
          changed[at] = how === 0 ? random(256) : how === 1 ? changed[at]! ^ (1 << random(8)) : special[random(special.length)]!;
        }
        const cut = k % 7 === 0 ? changed.subarray(0, random(changed.length)) : changed;
        const fast = walk(readerAttributes, cut);
        if (typeof fast.at(-1) === 'string') errors++;
        expect(fast).toEqual(walk(generalAttributes, cut));
      }
    }
    // the changes reach the paths that refuse an attribute, not only values
    expect(errors).toBeGreaterThan(500);
  });

  it("finds a value's string where the general way does, or refuses it with the same error", () => {
    let seed = 29;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return (seed >>> 12) % n;
    };
    const special = [TAG.utf8String, TAG.ia5String, 0x13, 0x1a, 0x2c, TAG.octetString, 0x80, 0x81, 0x00, 0x7f, 0xff, 0x1f];
    let refused = 0;
    let read = 0;
    for (const content of contents) {
      expect(stringStarts(content, stringStart)).toEqual(stringStarts(content, generalStringStart));
      for (let k = 0; k < 1500; k++) {
        const changed = Buffer.from(content);
        for (let j = 1 + random(3); j > 0; j--) {
          const at = random(changed.length);
          changed[at] = random(2) === 0 ? random(256) : special[random(special.length)]!;
        }
        const fast = stringStarts(changed, stringStart);
        expect(fast).toEqual(stringStarts(changed, generalStringStart));
        for (const v of fast) {
          if (!Array.isArray(v)) continue;
          if (typeof v[1] === 'number') read++;
          else refused++;
        }
      }
    }
    // both ways are taken: values read and values refused
    expect(read).toBeGreaterThan(10_000);
    expect(refused).toBeGreaterThan(10_000);
  });
});
