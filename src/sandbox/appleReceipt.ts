// The sandbox's own reader of App Store app receipts (StoreKit 1), written from Apple's format (the archived
// Receipt Validation Programming Guide) and kept apart from the pipeline's reader on purpose: the sandbox stands
// in for RevenueCat, so a misreading on either side shows up as a disagreement instead of being shared.
//
// A receipt is a PKCS#7 ContentInfo { signedData, [0] SignedData }; the SignedData's encapsulated content is an
// OCTET STRING holding a SET of SEQUENCE { type INTEGER, version INTEGER, value OCTET STRING }, each value
// itself DER. Xcode writes BER with indefinite lengths and wraps the content in a constructed OCTET STRING;
// ber.ts reads both. No signature check: RevenueCat asks Apple, and the sandbox trusts what it is sent.
import type { AppleTokenContents, AppleTransaction } from './appleContents.js';
import { BerError, TAG, childrenOf, contentBytes, integerOf, isUniversal, readTlv, type Tlv } from './ber.js';

// 1.2.840.113549.1.7.2, as DER contents.
const OID_SIGNED_DATA = Buffer.from([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]);

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
  try {
    return read(Buffer.from(base64, 'base64'));
  } catch (error) {
    if (error instanceof BerError) throw new NotAReceipt(`not BER: ${error.message}`, { cause: error });
    throw error;
  }
}

function read(bytes: Uint8Array): AppleTokenContents {
  const contentInfo = readTlv(bytes, 0);
  const [oid, explicit] = childrenOf(bytes, expect(contentInfo, TAG.sequence));
  if (!oid || !isUniversal(oid, TAG.objectIdentifier) || !OID_SIGNED_DATA.equals(bytes.subarray(oid.start, oid.end))) throw new NotAReceipt('not PKCS#7 SignedData');
  const signedData = childrenOf(bytes, context0(explicit))[0];
  // SignedData: version, digestAlgorithms, encapContentInfo, [0] certificates, signerInfos.
  const encapContentInfo = childrenOf(bytes, expect(signedData, TAG.sequence)).find((c) => isUniversal(c, TAG.sequence));
  const eContent = childrenOf(bytes, context0(childrenOf(bytes, expect(encapContentInfo, TAG.sequence))[1]))[0];
  const payload = contentBytes(bytes, expect(eContent, TAG.octetString));

  const contents: AppleTokenContents = {
    kind: 'receipt',
    environment: 'Production',
    bundleId: '',
    createdMs: undefined,
    originalApplicationVersion: undefined,
    originalPurchaseDateMs: undefined,
    transactions: [],
  };
  for (const { type, value } of attributeSet(payload)) {
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
        const transaction = inAppPurchase(value);
        if (transaction) contents.transactions.push(transaction);
        break;
      }
    }
  }
  if (contents.bundleId === '') throw new NotAReceipt('no bundle id: not an app receipt');
  return contents;
}

function inAppPurchase(value: Uint8Array): AppleTransaction | undefined {
  const fields = new Map<number, Uint8Array>();
  for (const { type, value: v } of attributeSet(value)) fields.set(type, v);
  const get = (type: number): Uint8Array | undefined => fields.get(type);
  const productId = optional(get(IAP_PRODUCT_ID), stringValue);
  const transactionId = optional(get(IAP_TRANSACTION_ID), stringValue);
  const purchaseDateMs = optional(get(IAP_PURCHASE_DATE), dateValue);
  // A purchase without these is not one RevenueCat could grant: skipped rather than guessed.
  if (!productId || !transactionId || purchaseDateMs === undefined) return undefined;
  return {
    productId,
    transactionId,
    originalTransactionId: optional(get(IAP_ORIGINAL_TRANSACTION_ID), stringValue) || transactionId,
    purchaseDateMs,
    // 1708 and 1712 may be present and empty: dateValue gives undefined then.
    expiresDateMs: optional(get(IAP_EXPIRES_DATE), dateValue),
    revokedMs: optional(get(IAP_CANCELLATION_DATE), dateValue),
    quantity: optional(get(IAP_QUANTITY), integerValue) ?? 1,
  };
}

/** A SET of SEQUENCE { type, version, value OCTET STRING }; entries of another shape are skipped. */
function attributeSet(bytes: Uint8Array): { type: number; value: Uint8Array }[] {
  const set = readTlv(bytes, 0);
  if (!isUniversal(set, TAG.set)) throw new NotAReceipt('receipt payload is not a SET');
  const out: { type: number; value: Uint8Array }[] = [];
  for (const entry of childrenOf(bytes, set)) {
    if (!entry.constructed) continue;
    const [type, , value] = childrenOf(bytes, entry);
    if (!type || !value || !isUniversal(type, TAG.integer) || !isUniversal(value, TAG.octetString)) continue;
    out.push({ type: integerOf(bytes, type), value: contentBytes(bytes, value) });
  }
  return out;
}

function expect(tlv: Tlv | undefined, tag: number): Tlv {
  if (!tlv || !isUniversal(tlv, tag)) throw new NotAReceipt(`expected universal tag ${tag}`);
  return tlv;
}

/** An explicit [0] wrapper. */
function context0(tlv: Tlv | undefined): Tlv {
  if (!tlv || tlv.tagClass !== 2 || tlv.tag !== 0 || !tlv.constructed) throw new NotAReceipt('expected [0]');
  return tlv;
}

function optional<T>(bytes: Uint8Array | undefined, read: (bytes: Uint8Array) => T): T | undefined {
  return bytes === undefined ? undefined : read(bytes);
}

/** UTF8String or IA5String (undefined for anything else or an empty value). */
function stringValue(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0) return undefined;
  const tlv = readTlv(bytes, 0);
  if (!isUniversal(tlv, TAG.utf8String) && !isUniversal(tlv, TAG.ia5String)) return undefined;
  return Buffer.from(contentBytes(bytes, tlv)).toString(tlv.tag === TAG.utf8String ? 'utf8' : 'latin1');
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
  const tlv = readTlv(bytes, 0);
  return isUniversal(tlv, TAG.integer) ? integerOf(bytes, tlv) : undefined;
}
