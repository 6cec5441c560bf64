// The sandbox's own reader of App Store app receipts (StoreKit 1), written from Apple's format (the archived
// Receipt Validation Programming Guide) and kept apart from the pipeline's reader on purpose: the sandbox stands
// in for RevenueCat, so a misreading on either side shows up as a disagreement instead of being shared.
//
// A receipt is a PKCS#7 ContentInfo { signedData, [0] SignedData }; the SignedData's encapsulated content is an
// OCTET STRING holding a SET of SEQUENCE { type INTEGER, version INTEGER, value OCTET STRING }, each value
// itself DER. Xcode writes BER with indefinite lengths and wraps the content in a constructed OCTET STRING;
// asn1js reads both, and octets() below joins a constructed string's parts. No signature check: RevenueCat
// asks Apple, and the sandbox trusts what it is sent.
import * as asn1js from 'asn1js';
import type { AppleTokenContents, AppleTransaction } from './appleContents.js';

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';

// App receipt field types.
const RECEIPT_ENVIRONMENT = 0;
const RECEIPT_BUNDLE_ID = 2;
const RECEIPT_CREATION_DATE = 12;
const RECEIPT_IN_APP = 17;
const RECEIPT_ORIGINAL_PURCHASE_DATE = 18;
const RECEIPT_ORIGINAL_APPLICATION_VERSION = 19;
// In-app purchase field types.
const IAP_QUANTITY = 1701;
const IAP_PRODUCT_ID = 1702;
const IAP_TRANSACTION_ID = 1703;
const IAP_PURCHASE_DATE = 1704;
const IAP_ORIGINAL_TRANSACTION_ID = 1705;
const IAP_EXPIRES_DATE = 1708;
const IAP_CANCELLATION_DATE = 1712;

/** Why a token is not an app receipt; the caller falls back to the token scheme. */
export class NotAReceipt extends Error {}

/** A base64 PKCS#7 app receipt → its contents. Throws NotAReceipt when it is not one. */
export function readAppReceipt(base64: string): AppleTokenContents {
  const bytes = Buffer.from(base64, 'base64');
  const contentInfo = parse(bytes);
  const [oid, explicit] = children(contentInfo);
  if (!(oid instanceof asn1js.ObjectIdentifier) || oid.valueBlock.toString() !== OID_SIGNED_DATA) throw new NotAReceipt('not PKCS#7 SignedData');
  const signedData = children(explicit)[0];
  // SignedData: version, digestAlgorithms, encapContentInfo, [0] certificates, signerInfos.
  const encapContentInfo = children(signedData).find((c) => c instanceof asn1js.Sequence);
  const eContent = children(children(encapContentInfo)[1])[0];
  if (!eContent) throw new NotAReceipt('SignedData carries no content');

  const attributes = readAttributeSet(parse(octets(eContent)));
  const contents: AppleTokenContents = {
    kind: 'receipt',
    environment: 'Production',
    bundleId: '',
    createdMs: undefined,
    originalApplicationVersion: undefined,
    originalPurchaseDateMs: undefined,
    transactions: [],
  };
  for (const { type, value } of attributes) {
    switch (type) {
      case RECEIPT_ENVIRONMENT:
        contents.environment = stringValue(value) ?? contents.environment;
        break;
      case RECEIPT_BUNDLE_ID:
        contents.bundleId = stringValue(value) ?? '';
        break;
      case RECEIPT_CREATION_DATE:
        contents.createdMs = dateValue(value);
        break;
      case RECEIPT_ORIGINAL_PURCHASE_DATE:
        contents.originalPurchaseDateMs = dateValue(value);
        break;
      case RECEIPT_ORIGINAL_APPLICATION_VERSION:
        contents.originalApplicationVersion = stringValue(value) || undefined;
        break;
      case RECEIPT_IN_APP: {
        const transaction = readInApp(value);
        if (transaction) contents.transactions.push(transaction);
        break;
      }
    }
  }
  if (contents.bundleId === '') throw new NotAReceipt('no bundle id: not an app receipt');
  return contents;
}

function readInApp(value: Uint8Array): AppleTransaction | undefined {
  const fields = new Map<number, Uint8Array>();
  for (const { type, value: v } of readAttributeSet(parse(value))) fields.set(type, v);
  const get = (type: number): Uint8Array | undefined => fields.get(type);
  const productId = optional(get(IAP_PRODUCT_ID), stringValue);
  const transactionId = optional(get(IAP_TRANSACTION_ID), stringValue);
  const purchaseDateMs = optional(get(IAP_PURCHASE_DATE), dateValue);
  // A purchase without these is not one RevenueCat could grant: skipped rather than guessed.
  if (!productId || !transactionId || purchaseDateMs === undefined) return undefined;
  const cancelled = optional(get(IAP_CANCELLATION_DATE), dateValue);
  return {
    productId,
    transactionId,
    originalTransactionId: optional(get(IAP_ORIGINAL_TRANSACTION_ID), stringValue) || transactionId,
    purchaseDateMs,
    // 1708 may be present and empty (not a subscription): dateValue gives undefined then.
    expiresDateMs: optional(get(IAP_EXPIRES_DATE), dateValue),
    revokedMs: cancelled,
    quantity: optional(get(IAP_QUANTITY), integerValue) ?? 1,
  };
}

interface Attribute {
  type: number;
  value: Uint8Array;
}

/** A SET of SEQUENCE { type, version, value OCTET STRING }; entries of another shape are skipped. */
function readAttributeSet(set: asn1js.AsnType): Attribute[] {
  if (!(set instanceof asn1js.Set)) throw new NotAReceipt('receipt payload is not a SET');
  const out: Attribute[] = [];
  for (const entry of children(set)) {
    const [type, , value] = children(entry);
    if (!(type instanceof asn1js.Integer) || !(value instanceof asn1js.OctetString)) continue;
    out.push({ type: type.valueBlock.valueDec, value: octets(value) });
  }
  return out;
}

function parse(bytes: Uint8Array): asn1js.AsnType {
  const parsed = asn1js.fromBER(bytes);
  if (parsed.offset === -1 || parsed.result.error) throw new NotAReceipt(`not BER: ${parsed.result.error || 'unreadable'}`);
  return parsed.result;
}

function children(node: asn1js.AsnType | undefined): asn1js.AsnType[] {
  const value: unknown = (node as { valueBlock?: { value?: unknown } } | undefined)?.valueBlock?.value;
  return Array.isArray(value) ? (value as asn1js.AsnType[]) : [];
}

/** The bytes of an OCTET STRING, a constructed one's parts joined (BER, as Xcode writes). */
function octets(node: asn1js.AsnType): Uint8Array {
  if (!(node instanceof asn1js.OctetString)) throw new NotAReceipt('expected an OCTET STRING');
  if (!node.valueBlock.isConstructed) return node.valueBlock.valueHexView;
  return Buffer.concat(children(node).map((part) => octets(part)));
}

function optional<T>(bytes: Uint8Array | undefined, read: (bytes: Uint8Array) => T): T | undefined {
  return bytes === undefined ? undefined : read(bytes);
}

/** UTF8String or IA5String (undefined for anything else or an empty value). */
function stringValue(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0) return undefined;
  const node = parse(bytes);
  if (node instanceof asn1js.Utf8String || node instanceof asn1js.IA5String) return node.valueBlock.value;
  return undefined;
}

/** RFC 3339 in an IA5String; empty (1708, 1712 when absent) → undefined. */
function dateValue(bytes: Uint8Array): number | undefined {
  const text = stringValue(bytes);
  if (!text) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

function integerValue(bytes: Uint8Array): number | undefined {
  if (bytes.length === 0) return undefined;
  const node = parse(bytes);
  return node instanceof asn1js.Integer ? node.valueBlock.valueDec : undefined;
}
