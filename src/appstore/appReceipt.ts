// An App Store app receipt (the base64 file StoreKit 1 apps send), read without checking its signature:
// RevenueCat verifies every receipt with Apple, this reader only learns what the receipt says so the ingester can
// group purchases before anything is sent.
//
// Format (Apple's archived Receipt Validation Programming Guide; RevenueCat's purchases-ios LocalReceiptParsing;
// Apple's receipt_utility.ts): a PKCS#7 ContentInfo whose SignedData's encapsulated content is an OCTET STRING
// holding a SET of `SEQUENCE { type INTEGER, version INTEGER, value OCTET STRING }`, each value itself DER.
// Receipt types read: 0 environment, 2 bundle id, 3 app version, 12 creation date, 17 in-app purchase (a SET of
// the same SEQUENCEs), 19 original application version, 21 expiration date. In-app types read: 1701 quantity,
// 1702 product id, 1703 transaction id, 1704 purchase date, 1705 original transaction id (absent in Xcode
// receipts), 1706 original purchase date, 1708 subscription expiry, 1712 cancellation date; 1708 and 1712 may be present and empty (no expiry, not
// cancelled). Every other type (opaque value, SHA-1 hash, undocumented ones) is skipped by length.
import { BerError, TAG, childrenOf, expectChild, isOid, octets, readElement, smallInteger, type BerElement } from './ber.js';

/** One in-app purchase of a receipt (type 17). Dates are epoch milliseconds. */
export interface InAppPurchase {
  productId: string;
  transactionId: string;
  originalTransactionId: string;
  purchaseMs: number;
  originalPurchaseMs?: number;
  /** subscription expiry; absent for a purchase that does not expire, or when 1708 is present and empty */
  expiresMs?: number;
  /** refund or cancellation by Apple support (1712), when present and not empty */
  cancellationMs?: number;
  quantity?: number;
}

/** What an app receipt says. */
export interface AppReceipt {
  /** type 0 as written: 'Production', 'ProductionSandbox', 'Xcode' …; absent in some receipts */
  environment?: string;
  bundleId: string;
  appVersion?: string;
  originalAppVersion?: string;
  /** type 12: when the receipt was created (refreshed) */
  creationMs: number;
  /** type 21: when a volume-purchase receipt expires */
  expirationMs?: number;
  /** in the order the receipt lists them (a SET: Apple's order is not meaningful) */
  purchases: InAppPurchase[];
}

/** A receipt that decodes as BER but lacks what every app receipt has. The message names the field. */
export class ReceiptContentError extends Error {
  override name = 'ReceiptContentError';
}

// Object identifiers, as the contents octets of their DER encoding.
const OID_SIGNED_DATA = Uint8Array.of(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02); // 1.2.840.113549.1.7.2
const OID_DATA = Uint8Array.of(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01); // 1.2.840.113549.1.7.1

const RECEIPT = { environment: 0, bundleId: 2, appVersion: 3, creationDate: 12, inApp: 17, originalAppVersion: 19, expirationDate: 21 };
const IN_APP = {
  quantity: 1701,
  productId: 1702,
  transactionId: 1703,
  purchaseDate: 1704,
  originalTransactionId: 1705,
  originalPurchaseDate: 1706,
  expiresDate: 1708,
  cancellationDate: 1712,
};

/**
 * The SignedData's encapsulated content: ContentInfo { signedData OID, [0] SignedData { version,
 * digestAlgorithms, EncapsulatedContentInfo { data OID, [0] OCTET STRING } … } }. The certificates and signer
 * infos after it are not read.
 */
export function receiptContent(der: Buffer): Buffer {
  const contentInfo = readElement(der, 0);
  if (contentInfo.tag !== TAG.sequence) throw new BerError('not a ContentInfo');
  const [contentType, explicit] = childrenOf(der, contentInfo);
  if (!contentType || !isOid(der, contentType, OID_SIGNED_DATA)) throw new ReceiptContentError('not a PKCS#7 SignedData');
  if (explicit?.tag !== TAG.context0) throw new BerError('no SignedData content');
  const signedData = expectChild(der, explicit, TAG.sequence, 'a SignedData SEQUENCE');
  const [version, digestAlgorithms, encap] = childrenOf(der, signedData);
  if (version?.tag !== TAG.integer || digestAlgorithms?.tag !== TAG.set || encap?.tag !== TAG.sequence) throw new BerError('not a SignedData');
  const [eContentType, eContentExplicit] = childrenOf(der, encap);
  if (!eContentType || !isOid(der, eContentType, OID_DATA)) throw new ReceiptContentError('SignedData content is not data');
  if (eContentExplicit?.tag !== TAG.context0) throw new ReceiptContentError('SignedData has no content');
  const eContent = childrenOf(der, eContentExplicit)[0];
  if (!eContent) throw new ReceiptContentError('SignedData has no content');
  return octets(der, eContent);
}

/**
 * Calls `visit(type, value)` for each `SEQUENCE { type, version, value }` of a receipt SET. Reads the three fields
 * in place rather than through childrenOf: this loop runs a dozen times per purchase, and its garbage was the
 * largest cost of a read. The DER form every App Store receipt uses goes through derAttribute, which makes no
 * element but the value's (a fifth less CPU per receipt: bench/README.md, ingestReceipts); anything else, BER's
 * indefinite lengths or a malformed attribute, the general way. Exported for the test that holds the two ways
 * to one answer (test/receiptAttributes.test.ts).
 */
export function eachAttribute(buf: Buffer, set: BerElement, visit: (type: number, value: BerElement) => void): void {
  if (set.tag !== TAG.set) throw new ReceiptContentError('receipt content is not a SET of attributes');
  for (let at = set.start; at < set.end;) {
    const next = derAttribute(buf, at, set.end, visit);
    if (next !== 0) {
      at = next;
      continue;
    }
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

/** A definite length of at most two octets at buf[at] (DER's form for anything below 64 KB): [length, where the contents start], or undefined. */
function shortLength(buf: Buffer, at: number): number | undefined {
  const first = buf[at];
  if (first === undefined) return undefined;
  if (first < 0x80) return first;
  if (first === 0x81) return buf[at + 1];
  if (first === 0x82) {
    const hi = buf[at + 1];
    const lo = buf[at + 2];
    return hi === undefined || lo === undefined ? undefined : hi * 256 + lo;
  }
  return undefined;
}

const lengthOctets = (buf: Buffer, at: number): number => (buf[at]! < 0x80 ? 1 : buf[at] === 0x81 ? 2 : 3);

/**
 * The common case of eachAttribute, read without making an element for the attribute, its type and its version:
 * `SEQUENCE { INTEGER (1-2 octets, non-negative), INTEGER, OCTET STRING }` with definite lengths of at most two
 * octets, all within `limit`. Visits it and returns where the next attribute starts; 0 when the attribute is
 * anything else, which eachAttribute then reads the general way (and rejects what it must, with its own message).
 */
function derAttribute(buf: Buffer, at: number, limit: number, visit: (type: number, value: BerElement) => void): number {
  if (buf[at] !== TAG.sequence) return 0;
  const length = shortLength(buf, at + 1);
  if (length === undefined) return 0;
  let p = at + 1 + lengthOctets(buf, at + 1);
  const end = p + length;
  if (end > limit) return 0;
  // type: INTEGER of one or two octets, high bit clear (smallInteger's rules, for the sizes met)
  const typeLength = buf[p + 1];
  if (buf[p] !== TAG.integer || (typeLength !== 1 && typeLength !== 2) || p + 2 + typeLength > end || (buf[p + 2]! & 0x80) !== 0) return 0;
  const type = typeLength === 1 ? buf[p + 2]! : buf[p + 2]! * 256 + buf[p + 3]!;
  p += 2 + typeLength;
  // version: any INTEGER, short form (its value is not read)
  const versionLength = buf[p + 1];
  if (buf[p] !== TAG.integer || versionLength === undefined || versionLength >= 0x80 || p + 2 + versionLength > end) return 0;
  p += 2 + versionLength;
  // value: a primitive OCTET STRING
  if (buf[p] !== TAG.octetString || p + 1 >= end) return 0;
  const valueLength = shortLength(buf, p + 1);
  if (valueLength === undefined) return 0;
  const start = p + 1 + lengthOctets(buf, p + 1);
  if (start + valueLength > end) return 0;
  visit(type, { tag: TAG.octetString, constructed: false, start, end: start + valueLength, next: start + valueLength });
  return end;
}

/** The element a value OCTET STRING holds (each value is itself DER). */
function inner(buf: Buffer, value: BerElement): BerElement {
  const element = readElement(buf, value.start, value.end);
  if (element.next !== value.end) throw new BerError('value has trailing bytes');
  return element;
}

const STRING_TAGS = new Set<number>([TAG.utf8String, TAG.ia5String, 0x13 /* PrintableString */, 0x1a /* VisibleString */]);

function stringValue(buf: Buffer, value: BerElement): string {
  const element = inner(buf, value);
  if (!STRING_TAGS.has(element.tag)) throw new BerError('expected a string value');
  return buf.toString('utf8', element.start, element.end);
}

/** RFC 3339 as Apple writes it (`2020-07-22T17:39:08Z`), with fractions of a second or an offset tolerated. */
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)$/;

/** The number written by the ASCII digits buf[at, at + count), or NaN. */
function digits(buf: Buffer, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Apple's own form, `YYYY-MM-DDTHH:MM:SSZ`, read from the bytes without making a string: a receipt holds three
 * or four dates per purchase, and building strings and match arrays for them was a fifth of a read.
 */
function appleDate(buf: Buffer, start: number, end: number): number {
  if (end - start !== 20 || buf[start + 4] !== 0x2d || buf[start + 7] !== 0x2d || buf[start + 10] !== 0x54) return NaN;
  if (buf[start + 13] !== 0x3a || buf[start + 16] !== 0x3a || buf[start + 19] !== 0x5a) return NaN;
  const month = digits(buf, start + 5, 2);
  const day = digits(buf, start + 8, 2);
  const hour = digits(buf, start + 11, 2);
  const minute = digits(buf, start + 14, 2);
  const second = digits(buf, start + 17, 2);
  if (!(month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 && second <= 60)) return NaN;
  return Date.UTC(digits(buf, start, 4), month - 1, day, hour, minute, second);
}

/** A date value: epoch ms, or undefined for the empty string Apple writes for "none" (1708, 1712). */
function dateValue(buf: Buffer, value: BerElement, what: string): number | undefined {
  const element = inner(buf, value);
  if (!STRING_TAGS.has(element.tag)) throw new BerError('expected a string value');
  if (element.start === element.end) return undefined;
  const fast = appleDate(buf, element.start, element.end);
  if (!Number.isNaN(fast)) return fast;
  // Any other RFC 3339 spelling (fractions, an offset): rare, so the slow way.
  const text = buf.toString('latin1', element.start, element.end);
  const ms = RFC3339.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw new ReceiptContentError(`${what} is not an RFC 3339 date`);
  return ms;
}

function integerValue(buf: Buffer, value: BerElement): number {
  return smallInteger(buf, inner(buf, value));
}

function readInApp(buf: Buffer, value: BerElement): InAppPurchase {
  let productId: string | undefined;
  let transactionId: string | undefined;
  let originalTransactionId: string | undefined;
  let purchaseMs: number | undefined;
  const purchase: Partial<InAppPurchase> = {};
  eachAttribute(buf, inner(buf, value), (type, v) => {
    switch (type) {
      case IN_APP.productId:
        productId = stringValue(buf, v);
        break;
      case IN_APP.transactionId:
        transactionId = stringValue(buf, v);
        break;
      case IN_APP.originalTransactionId:
        originalTransactionId = stringValue(buf, v);
        break;
      case IN_APP.purchaseDate:
        purchaseMs = dateValue(buf, v, 'purchase date (1704)');
        break;
      case IN_APP.originalPurchaseDate: {
        const ms = dateValue(buf, v, 'original purchase date (1706)');
        if (ms !== undefined) purchase.originalPurchaseMs = ms;
        break;
      }
      case IN_APP.expiresDate: {
        const ms = dateValue(buf, v, 'expiry (1708)');
        if (ms !== undefined) purchase.expiresMs = ms;
        break;
      }
      case IN_APP.cancellationDate: {
        const ms = dateValue(buf, v, 'cancellation date (1712)');
        if (ms !== undefined) purchase.cancellationMs = ms;
        break;
      }
      case IN_APP.quantity:
        purchase.quantity = integerValue(buf, v);
        break;
    }
  });
  // A purchase missing one of these cannot be compared with another receipt's: the whole receipt goes unread
  // (sent as it is) rather than half-read.
  if (!productId) throw new ReceiptContentError('in-app purchase without product id (1702)');
  if (!transactionId) throw new ReceiptContentError('in-app purchase without transaction id (1703)');
  if (purchaseMs === undefined) throw new ReceiptContentError('in-app purchase without purchase date (1704)');
  // Xcode's StoreKit testing writes no 1705 (its signed transactions give originalTransactionId = transactionId
  // for a first purchase): the transaction is then taken as its own original, as a first purchase is.
  return { productId, transactionId, originalTransactionId: originalTransactionId || transactionId, purchaseMs, ...purchase };
}

/**
 * Reads a decoded (binary) app receipt. Throws BerError for an encoding that is not BER or is cut short, and
 * ReceiptContentError for a well-formed file that is not an app receipt or lacks its bundle id or creation date.
 */
export function readAppReceipt(der: Buffer): AppReceipt {
  const content = receiptContent(der);
  const set = readElement(content, 0);
  let environment: string | undefined;
  let bundleId: string | undefined;
  let creationMs: number | undefined;
  const receipt: Partial<AppReceipt> = {};
  const purchases: InAppPurchase[] = [];
  eachAttribute(content, set, (type, value) => {
    switch (type) {
      case RECEIPT.environment:
        environment = stringValue(content, value);
        break;
      case RECEIPT.bundleId:
        bundleId = stringValue(content, value);
        break;
      case RECEIPT.creationDate:
        creationMs = dateValue(content, value, 'creation date (12)');
        break;
      case RECEIPT.appVersion:
        receipt.appVersion = stringValue(content, value);
        break;
      case RECEIPT.originalAppVersion:
        receipt.originalAppVersion = stringValue(content, value);
        break;
      case RECEIPT.expirationDate: {
        const ms = dateValue(content, value, 'expiration date (21)');
        if (ms !== undefined) receipt.expirationMs = ms;
        break;
      }
      case RECEIPT.inApp:
        purchases.push(readInApp(content, value));
        break;
    }
  });
  if (!bundleId) throw new ReceiptContentError('receipt without bundle id (2)');
  if (creationMs === undefined) throw new ReceiptContentError('receipt without creation date (12)');
  return { ...(environment !== undefined ? { environment } : {}), bundleId, creationMs, ...receipt, purchases };
}
