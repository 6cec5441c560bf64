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
 * Where a walk over a receipt SET stands: after `nextAttribute` answers true, the attribute's type and the bounds of
 * its value OCTET STRING's contents. One cursor per SET walked, not an element per attribute: this loop runs a
 * dozen times per purchase, and its garbage was the largest cost of a read.
 */
export interface AttributeCursor {
  /** where the next attribute starts */
  at: number;
  /** the end of the SET's contents */
  limit: number;
  type: number;
  start: number;
  end: number;
}

/** A cursor over the attributes of a receipt SET (the content's, or an in-app purchase's). */
export function attributesOf(set: BerElement): AttributeCursor {
  if (set.tag !== TAG.set) throw new ReceiptContentError('receipt content is not a SET of attributes');
  return { at: set.start, limit: set.end, type: 0, start: 0, end: 0 };
}

/**
 * Reads the `SEQUENCE { type, version, value }` at the cursor into it and moves past it; false at the SET's end.
 * The DER form every App Store receipt uses goes through derAttribute, which makes no element (a fifth less CPU
 * per receipt: bench/README.md, ingestReceipts); anything else, BER's indefinite lengths or a malformed attribute,
 * the general way, which throws what it must. test/receiptAttributes.test.ts holds the two ways to one answer.
 */
export function nextAttribute(buf: Buffer, c: AttributeCursor): boolean {
  if (c.at >= c.limit) return false;
  if (derAttribute(buf, c)) return true;
  const attribute = readElement(buf, c.at, c.limit, 1);
  if (attribute.tag !== TAG.sequence) throw new BerError('attribute is not a SEQUENCE');
  const type = readElement(buf, attribute.start, attribute.end, 2);
  const version = readElement(buf, type.next, attribute.end, 2);
  const value = readElement(buf, version.next, attribute.end, 2);
  if (version.tag !== TAG.integer || value.tag !== TAG.octetString) throw new BerError('attribute is not { type, version, value }');
  c.type = smallInteger(buf, type);
  c.start = value.start;
  c.end = value.end;
  c.at = attribute.next;
  return true;
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
 * The common case of nextAttribute, read without making an element for the attribute, its type and its version:
 * `SEQUENCE { INTEGER (1-2 octets, non-negative), INTEGER, OCTET STRING }` with definite lengths of at most two
 * octets, all within the SET. Fills the cursor and answers true; false when the attribute is anything else, which
 * nextAttribute then reads the general way (and rejects what it must, with its own message).
 */
function derAttribute(buf: Buffer, c: AttributeCursor): boolean {
  const at = c.at;
  if (buf[at] !== TAG.sequence) return false;
  const length = shortLength(buf, at + 1);
  if (length === undefined) return false;
  let p = at + 1 + lengthOctets(buf, at + 1);
  const end = p + length;
  if (end > c.limit) return false;
  // type: INTEGER of one or two octets, high bit clear (smallInteger's rules, for the sizes met)
  const typeLength = buf[p + 1];
  if (buf[p] !== TAG.integer || (typeLength !== 1 && typeLength !== 2) || p + 2 + typeLength > end || (buf[p + 2]! & 0x80) !== 0) return false;
  const type = typeLength === 1 ? buf[p + 2]! : buf[p + 2]! * 256 + buf[p + 3]!;
  p += 2 + typeLength;
  // version: any INTEGER, short form (its value is not read)
  const versionLength = buf[p + 1];
  if (buf[p] !== TAG.integer || versionLength === undefined || versionLength >= 0x80 || p + 2 + versionLength > end) return false;
  p += 2 + versionLength;
  // value: a primitive OCTET STRING
  if (buf[p] !== TAG.octetString || p + 1 >= end) return false;
  const valueLength = shortLength(buf, p + 1);
  if (valueLength === undefined) return false;
  const start = p + 1 + lengthOctets(buf, p + 1);
  if (start + valueLength > end) return false;
  c.type = type;
  c.start = start;
  c.end = start + valueLength;
  c.at = end;
  return true;
}

/** The element a value OCTET STRING's contents [start, end) hold (each value is itself DER). */
function inner(buf: Buffer, start: number, end: number): BerElement {
  const element = readElement(buf, start, end);
  if (element.next !== end) throw new BerError('value has trailing bytes');
  return element;
}

const STRING_TAGS = new Set<number>([TAG.utf8String, TAG.ia5String, 0x13 /* PrintableString */, 0x1a /* VisibleString */]);

/**
 * Where the text of the string a value holds starts: its contents run to `end`. The common case, a string with a
 * one-octet length that fills the value, is read in place; anything else through `inner`, which throws what it must.
 * Exported for the test that holds the two ways to one answer (test/receiptAttributes.test.ts).
 */
export function stringStart(buf: Buffer, start: number, end: number): number {
  const length = buf[start + 1];
  if (length !== undefined && length < 0x80 && start + 2 + length === end && STRING_TAGS.has(buf[start]!)) return start + 2;
  const element = inner(buf, start, end);
  if (!STRING_TAGS.has(element.tag)) throw new BerError('expected a string value');
  return element.start;
}

function stringValue(buf: Buffer, start: number, end: number): string {
  return buf.toString('utf8', stringStart(buf, start, end), end);
}

/**
 * The last string read for one field of a receipt's purchases, given again when the next purchase holds the same
 * bytes: every renewal of a subscription repeats its product id and its original transaction id.
 */
class RepeatedString {
  // bytes [0, 0) of any buffer are the empty string
  private start = 0;
  private end = 0;
  private text = '';
  read(buf: Buffer, valueStart: number, valueEnd: number): string {
    const start = stringStart(buf, valueStart, valueEnd);
    if (valueEnd - start === this.end - this.start && buf.compare(buf, this.start, this.end, start, valueEnd) === 0) return this.text;
    this.start = start;
    this.end = valueEnd;
    this.text = buf.toString('utf8', start, valueEnd);
    return this.text;
  }
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
function dateValue(buf: Buffer, valueStart: number, valueEnd: number, what: string): number | undefined {
  const start = stringStart(buf, valueStart, valueEnd);
  if (start === valueEnd) return undefined;
  const fast = appleDate(buf, start, valueEnd);
  if (!Number.isNaN(fast)) return fast;
  // Any other RFC 3339 spelling (fractions, an offset): rare, so the slow way.
  const text = buf.toString('latin1', start, valueEnd);
  const ms = RFC3339.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw new ReceiptContentError(`${what} is not an RFC 3339 date`);
  return ms;
}

function integerValue(buf: Buffer, start: number, end: number): number {
  return smallInteger(buf, inner(buf, start, end));
}

/** The strings a receipt's purchases repeat, read once per run of equal values (RepeatedString). */
interface PurchaseStrings {
  productId: RepeatedString;
  originalTransactionId: RepeatedString;
}

function readInApp(buf: Buffer, start: number, end: number, strings: PurchaseStrings): InAppPurchase {
  let productId: string | undefined;
  let transactionId: string | undefined;
  let originalTransactionId: string | undefined;
  let purchaseMs: number | undefined;
  let originalPurchaseMs: number | undefined;
  let expiresMs: number | undefined;
  let cancellationMs: number | undefined;
  let quantity: number | undefined;
  const c = attributesOf(inner(buf, start, end));
  while (nextAttribute(buf, c)) {
    switch (c.type) {
      case IN_APP.productId:
        productId = strings.productId.read(buf, c.start, c.end);
        break;
      case IN_APP.transactionId:
        transactionId = stringValue(buf, c.start, c.end);
        break;
      case IN_APP.originalTransactionId:
        originalTransactionId = strings.originalTransactionId.read(buf, c.start, c.end);
        break;
      case IN_APP.purchaseDate:
        purchaseMs = dateValue(buf, c.start, c.end, 'purchase date (1704)');
        break;
      case IN_APP.originalPurchaseDate:
        originalPurchaseMs = dateValue(buf, c.start, c.end, 'original purchase date (1706)') ?? originalPurchaseMs;
        break;
      case IN_APP.expiresDate:
        expiresMs = dateValue(buf, c.start, c.end, 'expiry (1708)') ?? expiresMs;
        break;
      case IN_APP.cancellationDate:
        cancellationMs = dateValue(buf, c.start, c.end, 'cancellation date (1712)') ?? cancellationMs;
        break;
      case IN_APP.quantity:
        quantity = integerValue(buf, c.start, c.end);
        break;
    }
  }
  // A purchase missing one of these cannot be compared with another receipt's: the whole receipt goes unread
  // (sent as it is) rather than half-read.
  if (!productId) throw new ReceiptContentError('in-app purchase without product id (1702)');
  if (!transactionId) throw new ReceiptContentError('in-app purchase without transaction id (1703)');
  if (purchaseMs === undefined) throw new ReceiptContentError('in-app purchase without purchase date (1704)');
  // Xcode's StoreKit testing writes no 1705 (its signed transactions give originalTransactionId = transactionId
  // for a first purchase): the transaction is then taken as its own original, as a first purchase is.
  // One shape for every purchase (absent fields undefined): objects built by spreading optional parts took
  // a dictionary shape each, and made the rest of the ingest's code that reads them slower too.
  return { productId, transactionId, originalTransactionId: originalTransactionId || transactionId, purchaseMs, originalPurchaseMs, expiresMs, cancellationMs, quantity };
}

/**
 * Reads a decoded (binary) app receipt. Throws BerError for an encoding that is not BER or is cut short, and
 * ReceiptContentError for a well-formed file that is not an app receipt or lacks its bundle id or creation date.
 */
export function readAppReceipt(der: Buffer): AppReceipt {
  const content = receiptContent(der);
  let environment: string | undefined;
  let bundleId: string | undefined;
  let creationMs: number | undefined;
  let appVersion: string | undefined;
  let originalAppVersion: string | undefined;
  let expirationMs: number | undefined;
  const purchases: InAppPurchase[] = [];
  const strings: PurchaseStrings = { productId: new RepeatedString(), originalTransactionId: new RepeatedString() };
  const c = attributesOf(readElement(content, 0));
  while (nextAttribute(content, c)) {
    switch (c.type) {
      case RECEIPT.environment:
        environment = stringValue(content, c.start, c.end);
        break;
      case RECEIPT.bundleId:
        bundleId = stringValue(content, c.start, c.end);
        break;
      case RECEIPT.creationDate:
        creationMs = dateValue(content, c.start, c.end, 'creation date (12)');
        break;
      case RECEIPT.appVersion:
        appVersion = stringValue(content, c.start, c.end);
        break;
      case RECEIPT.originalAppVersion:
        originalAppVersion = stringValue(content, c.start, c.end);
        break;
      case RECEIPT.expirationDate:
        expirationMs = dateValue(content, c.start, c.end, 'expiration date (21)') ?? expirationMs;
        break;
      case RECEIPT.inApp:
        purchases.push(readInApp(content, c.start, c.end, strings));
        break;
    }
  }
  if (!bundleId) throw new ReceiptContentError('receipt without bundle id (2)');
  if (creationMs === undefined) throw new ReceiptContentError('receipt without creation date (12)');
  return { environment, bundleId, appVersion, originalAppVersion, creationMs, expirationMs, purchases };
}
