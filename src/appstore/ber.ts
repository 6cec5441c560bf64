// A minimal BER element reader: identifier, length (definite or indefinite) and the bounds of the contents, and
// nothing more. It is what the App Store receipt reader walks instead of asn1js + pkijs, because those could not
// keep up: asn1js 4.0.0's fromBER alone took 5-7 ms of CPU for one 8 KB sandbox receipt, and pkijs's ContentInfo
// + SignedData on top 12-20 ms (bench/scenarios/receipts.mjs: about 50-80 receipts a second against the 5,000 the
// ingester needs; this reader, 20,000-30,000). asn1js decodes every node into objects, certificates included,
// and tries every OCTET STRING and BIT STRING as nested ASN.1; it also refuses more than 10,000 nodes by
// default, which a receipt of some 800 purchases passes. A receipt needs a dozen elements on the path to its
// content and the three-field attributes below it; the rest is skipped by length.
//
// BER, not only DER: receipts made by Xcode's StoreKit testing use indefinite lengths and a constructed OCTET
// STRING around the content, which a DER-only reader rejects. Every malformation (a length past the end, a
// missing end-of-contents, nesting too deep) throws BerError, which the callers turn into an `unread` reading.
// The reader never copies the input except to join the segments of a constructed OCTET STRING.

/** A malformed or truncated encoding. Its message names the problem, never the bytes. */
export class BerError extends Error {
  override name = 'BerError';
  /** the encoding ends before an element does: a token cut short (a column width, a copy) */
  readonly truncated: boolean;
  constructor(message: string) {
    super(message);
    this.truncated = message.startsWith('truncated');
  }
}

/** Identifier octets of the universal types the receipt reader meets (class universal, number, P/C bit). */
export const TAG = {
  integer: 0x02,
  octetString: 0x04,
  octetStringConstructed: 0x24,
  oid: 0x06,
  utf8String: 0x0c,
  ia5String: 0x16,
  sequence: 0x30,
  set: 0x31,
  /** [0] EXPLICIT, context-specific and constructed: SignedData's `content` and `certificates` */
  context0: 0xa0,
} as const;

/** One element: where its contents lie in the buffer and where the next element starts. */
export interface BerElement {
  /**
   * The identifier octet for tag numbers below 31 (class, constructed bit and number, as in TAG); for the
   * high-tag-number form, 0x1f | class | constructed bit, with the number in `highTag`.
   */
  tag: number;
  highTag?: number;
  constructed: boolean;
  /** first byte of the contents */
  start: number;
  /** one past the last byte of the contents (before the end-of-contents octets of an indefinite length) */
  end: number;
  /** one past the whole element, end-of-contents octets included */
  next: number;
}

/** Nesting deeper than this is refused: no receipt comes close, and a hostile token cannot exhaust the stack. */
const MAX_DEPTH = 40;

/** Reads the element at `offset`, which must end by `limit`. */
export function readElement(buf: Uint8Array, offset: number, limit: number = buf.length, depth = 0): BerElement {
  if (depth > MAX_DEPTH) throw new BerError('nesting too deep');
  let at = offset;
  if (at >= limit) throw new BerError('truncated: identifier');
  const first = buf[at++]!;
  const constructed = (first & 0x20) !== 0;
  let highTag: number | undefined;
  if ((first & 0x1f) === 0x1f) {
    highTag = 0;
    for (;;) {
      if (at >= limit) throw new BerError('truncated: tag number');
      const b = buf[at++]!;
      highTag = highTag * 128 + (b & 0x7f);
      if (highTag > 0xffffff) throw new BerError('tag number too large');
      if ((b & 0x80) === 0) break;
    }
  }
  if (at >= limit) throw new BerError('truncated: length');
  const lengthByte = buf[at++]!;
  if (lengthByte === 0x80) {
    // Indefinite length (constructed only): the contents are elements up to an end-of-contents 00 00.
    if (!constructed) throw new BerError('indefinite length on a primitive element');
    const start = at;
    for (;;) {
      if (at + 1 >= limit) throw new BerError('truncated: no end-of-contents');
      if (buf[at] === 0 && buf[at + 1] === 0) {
        const element: BerElement = { tag: first, constructed, start, end: at, next: at + 2 };
        if (highTag !== undefined) element.highTag = highTag;
        return element;
      }
      at = readElement(buf, at, limit, depth + 1).next;
    }
  }
  let length: number;
  if (lengthByte < 0x80) {
    length = lengthByte;
  } else {
    const count = lengthByte & 0x7f;
    if (count > 4) throw new BerError('length too large');
    if (at + count > limit) throw new BerError('truncated: length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[at++]!;
  }
  const end = at + length;
  if (end > limit) throw new BerError('truncated: contents');
  const element: BerElement = { tag: first, constructed, start: at, end, next: end };
  if (highTag !== undefined) element.highTag = highTag;
  return element;
}

/** The elements inside a constructed element, in order. */
export function childrenOf(buf: Uint8Array, parent: BerElement, depth = 0): BerElement[] {
  if (!parent.constructed) throw new BerError('children of a primitive element');
  const out: BerElement[] = [];
  for (let at = parent.start; at < parent.end;) {
    const child = readElement(buf, at, parent.end, depth + 1);
    out.push(child);
    at = child.next;
  }
  return out;
}

/** The element's first child, which must carry `tag`. */
export function expectChild(buf: Uint8Array, parent: BerElement, tag: number, what: string): BerElement {
  const children = childrenOf(buf, parent);
  const child = children[0];
  if (child?.tag !== tag) throw new BerError(`expected ${what}`);
  return child;
}

/**
 * The bytes of an OCTET STRING: the contents of a primitive one, or the joined segments of a constructed one
 * (BER allows either; Xcode writes the constructed form).
 */
export function octets(buf: Buffer, element: BerElement, depth = 0): Buffer {
  if (element.tag === TAG.octetString) return buf.subarray(element.start, element.end);
  if (element.tag !== TAG.octetStringConstructed) throw new BerError('expected an OCTET STRING');
  if (depth > MAX_DEPTH) throw new BerError('nesting too deep');
  const parts = childrenOf(buf, element).map((segment) => octets(buf, segment, depth + 1));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** A non-negative INTEGER that fits a JavaScript number exactly (receipt types, versions, quantities). */
export function smallInteger(buf: Uint8Array, element: BerElement): number {
  if (element.tag !== TAG.integer) throw new BerError('expected an INTEGER');
  const length = element.end - element.start;
  if (length === 0) throw new BerError('empty INTEGER');
  if (length > 6) throw new BerError('INTEGER too large');
  if ((buf[element.start]! & 0x80) !== 0) throw new BerError('negative INTEGER');
  let value = 0;
  for (let i = element.start; i < element.end; i++) value = value * 256 + buf[i]!;
  return value;
}

/** True when the element is the OBJECT IDENTIFIER whose contents are `oid` (DER bytes, without tag and length). */
export function isOid(buf: Uint8Array, element: BerElement, oid: Uint8Array): boolean {
  if (element.tag !== TAG.oid || element.end - element.start !== oid.length) return false;
  for (let i = 0; i < oid.length; i++) if (buf[element.start + i] !== oid[i]) return false;
  return true;
}
