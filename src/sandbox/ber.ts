// A minimal BER reader (X.690): tag, length (definite or indefinite) and contents, nothing more. The sandbox
// reads App Store receipts on every iOS POST; asn1js, which it first used, decodes every OCTET STRING it meets as
// nested ASN.1 and took ~65 ms for one 8 KB receipt (measured on the RevenueCat sample), which made the
// stand-in the bottleneck of any run with real receipts. This walks only what the receipt reader asks for.

export class BerError extends Error {}

export interface Tlv {
  /** 0 universal, 1 application, 2 context-specific, 3 private. */
  tagClass: number;
  constructed: boolean;
  tag: number;
  /** Contents: [start, end) of the buffer; for an indefinite length, `end` is where its end-of-contents starts. */
  start: number;
  end: number;
  /** The offset just past the element (its end-of-contents octets included). */
  next: number;
}

export const TAG = { integer: 2, octetString: 4, objectIdentifier: 6, utf8String: 12, sequence: 16, set: 17, ia5String: 22 } as const;

/** The element at `offset`, which must end by `limit`. */
export function readTlv(buf: Uint8Array, offset: number, limit = buf.length): Tlv {
  let at = offset;
  const byte = (): number => {
    if (at >= limit) throw new BerError('truncated');
    return buf[at++] ?? 0;
  };
  const first = byte();
  const tagClass = first >> 6;
  const constructed = (first & 0x20) !== 0;
  let tag = first & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    let b: number;
    do {
      b = byte();
      tag = tag * 128 + (b & 0x7f);
      if (tag > 0xffffff) throw new BerError('tag too large');
    } while (b & 0x80);
  }
  const lengthByte = byte();
  if (lengthByte === 0x80) {
    if (!constructed) throw new BerError('indefinite length on a primitive');
    // The contents run to the end-of-contents octets (00 00) of this level: walk the children to find them.
    const start = at;
    let cursor = start;
    for (;;) {
      if (cursor + 2 > limit) throw new BerError('no end-of-contents');
      if (buf[cursor] === 0 && buf[cursor + 1] === 0) return { tagClass, constructed, tag, start, end: cursor, next: cursor + 2 };
      cursor = readTlv(buf, cursor, limit).next;
    }
  }
  let length = lengthByte;
  if (lengthByte & 0x80) {
    const count = lengthByte & 0x7f;
    if (count > 4) throw new BerError('length too large');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + byte();
  }
  const start = at;
  const end = start + length;
  if (end > limit) throw new BerError('contents run past their container');
  return { tagClass, constructed, tag, start, end, next: end };
}

/** The elements inside a constructed one. */
export function childrenOf(buf: Uint8Array, tlv: Tlv): Tlv[] {
  if (!tlv.constructed) throw new BerError('not constructed');
  const out: Tlv[] = [];
  for (let at = tlv.start; at < tlv.end;) {
    const child = readTlv(buf, at, tlv.end);
    out.push(child);
    at = child.next;
  }
  return out;
}

/** A string's bytes: a constructed (BER) string's segments joined. */
export function contentBytes(buf: Uint8Array, tlv: Tlv): Uint8Array {
  if (!tlv.constructed) return buf.subarray(tlv.start, tlv.end);
  return Buffer.concat(childrenOf(buf, tlv).map((part) => contentBytes(buf, part)));
}

/** A non-negative INTEGER that fits a double exactly (receipt field types, versions, quantities). */
export function integerOf(buf: Uint8Array, tlv: Tlv): number {
  if (tlv.tagClass !== 0 || tlv.tag !== TAG.integer || tlv.constructed) throw new BerError('not an INTEGER');
  if (tlv.end - tlv.start > 6) throw new BerError('INTEGER too large');
  let value = 0;
  for (let i = tlv.start; i < tlv.end; i++) value = value * 256 + (buf[i] ?? 0);
  return value;
}

export function isUniversal(tlv: Tlv, tag: number): boolean {
  return tlv.tagClass === 0 && tlv.tag === tag;
}
