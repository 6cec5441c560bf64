// Real App Store tokens for tests and benches, made with a throw-away key: base64 PKCS#7 SignedData app receipts
// built and signed with pkijs, and StoreKit 2 signed transactions (compact JWS, ES256, `x5c`) signed with jose.
// A chain of three certificates (root, intermediate, leaf: the shape of Apple's) is made once per signer; every
// token after that costs one ECDSA signature, so a bench can make thousands a second.
//
// Size: real receipts are 3-12 KB of base64, mostly certificates and, in old apps, hundreds of purchases. A
// receipt asked for `base64Length` gets random bytes in its opaque attribute (type 4) to reach that length give
// or take a few bytes: random, never a repeated pattern, so compression or deduplication downstream cannot make
// a bench look better than real receipts would.
//
// bench/lib/appleReceipts.mjs compiles this file on the fly, so the bench and the tests share one generator.
import { randomBytes, webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CompactSign } from 'jose';
import type { SignedTransaction } from '../../src/appstore/signedTransaction.js';

/** One in-app purchase of a generated receipt. Times are epoch milliseconds (whole seconds in a receipt). */
export interface ReceiptPurchaseSpec {
  productId: string;
  transactionId: string;
  /** omitted: the receipt has no 1705 (as Xcode writes them) */
  originalTransactionId?: string;
  purchaseMs: number;
  originalPurchaseMs?: number;
  /** a number: 1708 holds that date; null: 1708 is present and empty; omitted: no 1708 */
  expiresMs?: number | null;
  /** a number: 1712 holds that date; null: present and empty (as Apple writes it for a live purchase) */
  cancellationMs?: number | null;
  quantity?: number;
}

export interface ReceiptSpec {
  /** type 0 as written; omitted: no type 0 */
  environment?: string;
  bundleId: string;
  creationMs: number;
  appVersion?: string;
  originalAppVersion?: string;
  purchases: ReceiptPurchaseSpec[];
  /** pad to about this many base64 characters (random opaque bytes); the receipt is never cut below its content */
  base64Length?: number;
  /** encode as Xcode does: BER with indefinite lengths and a constructed OCTET STRING around the content */
  ber?: boolean;
}

/**
 * The payload of a signed transaction, in the reader's own terms (what the reader must give back); any other
 * field goes in `extra`. `inAppOwnershipType` defaults to PURCHASED.
 */
export interface SignedTransactionSpec extends SignedTransaction {
  extra?: Record<string, unknown>;
}

export interface AppleSigner {
  /** a base64 app receipt */
  receipt(spec: ReceiptSpec): Promise<string>;
  /** a compact JWS signed transaction */
  signedTransaction(spec: SignedTransactionSpec): Promise<string>;
}

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
const ECDSA_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const DAY_MS = 86_400_000;
const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  sha256: '2.16.840.1.101.3.4.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
};

// DER written by hand for everything that changes per receipt: asn1js builds an object tree per value, and
// the generator must keep ahead of the reader it feeds. One allocation per element.
function lengthBytes(length: number): number {
  return length < 0x80 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 4;
}
/** Writes tag and length at `at`; returns their size. */
function writeHead(out: Buffer, at: number, tag: number, length: number): number {
  const head = 1 + lengthBytes(length);
  out[at] = tag;
  if (length < 0x80) out[at + 1] = length;
  else {
    const count = head - 2;
    out[at + 1] = 0x80 | count;
    for (let i = 0, n = length; i < count; i++, n = Math.floor(n / 256)) out[at + head - 1 - i] = n % 256;
  }
  return head;
}
function der(tag: number, contents: Buffer): Buffer {
  const out = Buffer.allocUnsafe(1 + lengthBytes(contents.length) + contents.length);
  contents.copy(out, writeHead(out, 0, tag, contents.length));
  return out;
}
/** A constructed element of indefinite length: tag, 0x80, contents, end-of-contents. */
function indefinite(tag: number, contents: Buffer): Buffer {
  return Buffer.concat([Buffer.of(tag, 0x80), contents, Buffer.of(0, 0)]);
}
const integers = new Map<number, Buffer>();
/** A non-negative INTEGER (attribute types, versions, quantities), kept once made. */
function derInteger(value: number): Buffer {
  let encoded = integers.get(value);
  if (!encoded) {
    const bytes: number[] = [];
    for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
    if (bytes.length === 0 || bytes[0]! >= 0x80) bytes.unshift(0);
    encoded = der(0x02, Buffer.from(bytes));
    integers.set(value, encoded);
  }
  return encoded;
}
/** An unsigned big-endian integer (an ECDSA r or s) as a DER INTEGER. */
function derUnsigned(bytes: Buffer): Buffer {
  let at = 0;
  while (at < bytes.length - 1 && bytes[at] === 0) at++;
  const trimmed = bytes.subarray(at);
  return der(0x02, trimmed[0]! >= 0x80 ? Buffer.concat([Buffer.of(0), trimmed]) : trimmed);
}
function derOid(oid: string): Buffer {
  return Buffer.from(new asn1js.ObjectIdentifier({ value: oid }).toBER());
}
const utf8 = (text: string): Buffer => der(0x0c, Buffer.from(text, 'utf8'));
const ia5 = (text: string): Buffer => der(0x16, Buffer.from(text, 'latin1'));
/** Apple's date form: RFC 3339 in UTC, whole seconds. */
const date = (ms: number | null): Buffer => ia5(ms === null ? '' : new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z'));
/** SEQUENCE { type, version 1, OCTET STRING value }, in one buffer. */
function attribute(type: number, value: Buffer): Buffer {
  const typeDer = derInteger(type);
  const versionDer = derInteger(1);
  const inner = typeDer.length + versionDer.length + 1 + lengthBytes(value.length) + value.length;
  const out = Buffer.allocUnsafe(1 + lengthBytes(inner) + inner);
  let at = writeHead(out, 0, 0x30, inner);
  at += typeDer.copy(out, at);
  at += versionDer.copy(out, at);
  at += writeHead(out, at, 0x04, value.length);
  value.copy(out, at);
  return out;
}
function set(attributes: Buffer[]): Buffer {
  return der(0x31, Buffer.concat(attributes));
}

function purchaseAttributes(p: ReceiptPurchaseSpec): Buffer {
  const attrs = [attribute(1701, derInteger(p.quantity ?? 1)), attribute(1702, utf8(p.productId)), attribute(1703, utf8(p.transactionId)), attribute(1704, date(p.purchaseMs))];
  if (p.originalTransactionId !== undefined) attrs.push(attribute(1705, utf8(p.originalTransactionId)));
  attrs.push(attribute(1706, date(p.originalPurchaseMs ?? p.purchaseMs)));
  if (p.expiresMs !== undefined) attrs.push(attribute(1708, date(p.expiresMs)));
  if (p.cancellationMs !== undefined) attrs.push(attribute(1712, date(p.cancellationMs)));
  return set(attrs);
}

/** The receipt's SET of attributes, with `padding` random bytes in the opaque value (type 4). */
function receiptPayload(spec: ReceiptSpec, padding: number): Buffer {
  const attrs: Buffer[] = [];
  if (spec.environment !== undefined) attrs.push(attribute(0, utf8(spec.environment)));
  attrs.push(attribute(2, utf8(spec.bundleId)), attribute(3, utf8(spec.appVersion ?? '1')));
  attrs.push(attribute(4, randomBytes(8 + padding)), attribute(5, randomBytes(20)));
  attrs.push(attribute(12, date(spec.creationMs)), attribute(19, utf8(spec.originalAppVersion ?? '1.0')));
  for (const p of spec.purchases) attrs.push(attribute(17, purchaseAttributes(p)));
  return set(attrs);
}

function name(commonName: string): pkijs.RelativeDistinguishedNames {
  return new pkijs.RelativeDistinguishedNames({
    typesAndValues: [new pkijs.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn1js.Utf8String({ value: commonName }) })],
  });
}

async function certificate(subject: string, serial: number, keys: CryptoKeyPair, issuer: { name: string; key: CryptoKey }, now: number): Promise<pkijs.Certificate> {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = new asn1js.Integer({ value: serial });
  cert.subject = name(subject);
  cert.issuer = name(issuer.name);
  cert.notBefore.value = new Date(now - DAY_MS);
  cert.notAfter.value = new Date(now + 3650 * DAY_MS);
  await cert.subjectPublicKeyInfo.importKey(keys.publicKey, pkijs.getCrypto(true));
  await cert.sign(issuer.key, 'SHA-256', pkijs.getCrypto(true));
  return cert;
}

/** A signer with a fresh key pair and a fresh root → intermediate → leaf chain. */
export async function appleSigner(): Promise<AppleSigner> {
  const now = Date.now();
  const [rootKeys, intermediateKeys, leafKeys] = await Promise.all([0, 1, 2].map(() => crypto.subtle.generateKey(ECDSA_KEY, true, ['sign', 'verify'])));
  const root = await certificate('Test Root CA', 1, rootKeys!, { name: 'Test Root CA', key: rootKeys!.privateKey }, now);
  const intermediate = await certificate('Test Intermediate CA', 2, intermediateKeys!, { name: 'Test Root CA', key: rootKeys!.privateKey }, now);
  const leaf = await certificate('Test Receipt Signing', 3, leafKeys!, { name: 'Test Intermediate CA', key: intermediateKeys!.privateKey }, now);
  const chain = [leaf, intermediate, root];
  const x5c = chain.map((c) => Buffer.from(c.toSchema().toBER()).toString('base64'));
  /** bytes of a signed receipt beyond its payload */
  let overhead: number | undefined;

  // The parts of the SignedData that do not change from one receipt to the next, encoded once by pkijs.
  const certificatesDer = Buffer.concat(chain.map((c) => Buffer.from(c.toSchema().toBER())));
  const sidDer = Buffer.from(new pkijs.IssuerAndSerialNumber({ issuer: leaf.issuer, serialNumber: leaf.serialNumber }).toSchema().toBER());
  const sha256Der = Buffer.from(new pkijs.AlgorithmIdentifier({ algorithmId: OID.sha256, algorithmParams: new asn1js.Null() }).toSchema().toBER());
  const dataOidDer = derOid(OID.data);
  const signedDataOidDer = derOid(OID.signedData);
  const ecdsaSha256Der = Buffer.from(new pkijs.AlgorithmIdentifier({ algorithmId: OID.ecdsaWithSha256 }).toSchema().toBER());

  /**
   * ContentInfo { signedData, [0] SignedData { 1, {sha256}, { data, [0] payload }, [0] certificates,
   * { SignerInfo { 1, issuerAndSerialNumber, sha256, ecdsa-with-SHA256, signature } } } }, with no signed
   * attributes, so the signature is over the payload itself (RFC 5652 §5.4), as in Apple's receipts. Assembled
   * from the parts above rather than through pkijs's SignedData.sign and toBER, which took 20 ms a receipt
   * (asn1js re-encodes the certificates every time); the tests check that pkijs verifies the result.
   */
  async function signedReceipt(payload: Buffer, ber = false): Promise<Buffer> {
    const raw = Buffer.from(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, leafKeys!.privateKey, new Uint8Array(payload)));
    const signature = der(0x30, Buffer.concat([derUnsigned(raw.subarray(0, 32)), derUnsigned(raw.subarray(32))]));
    const signerInfo = der(0x30, Buffer.concat([derInteger(1), sidDer, sha256Der, ecdsaSha256Der, der(0x04, signature)]));
    // BER as Xcode writes it: indefinite lengths down to the content, and the content as a constructed OCTET
    // STRING around a primitive one.
    const wrap = ber ? indefinite : der;
    const content = ber ? indefinite(0x24, der(0x04, payload)) : der(0x04, payload);
    const encapsulated = wrap(0x30, Buffer.concat([dataOidDer, wrap(0xa0, content)]));
    const signedData = wrap(0x30, Buffer.concat([derInteger(1), der(0x31, sha256Der), encapsulated, der(0xa0, certificatesDer), der(0x31, signerInfo)]));
    return wrap(0x30, Buffer.concat([signedDataOidDer, wrap(0xa0, signedData)]));
  }

  return {
    async receipt(spec) {
      if (spec.base64Length === undefined) return (await signedReceipt(receiptPayload(spec, 0), spec.ber)).toString('base64');
      // Everything around the payload (certificates, signature, headers) is the same size give or take the ECDSA
      // signature's 70-72 bytes and a length byte: learnt from the first receipt, then the padding is the rest.
      if (overhead === undefined) {
        const bare = receiptPayload(spec, 0);
        overhead = (await signedReceipt(bare)).length - bare.length;
      }
      const unpadded = receiptPayload(spec, 0).length;
      const padding = Math.max(0, Math.floor((spec.base64Length * 3) / 4) - overhead - unpadded - 8);
      return (await signedReceipt(receiptPayload(spec, padding), spec.ber)).toString('base64');
    },

    async signedTransaction(spec) {
      const payload: Record<string, unknown> = {
        environment: spec.environment,
        bundleId: spec.bundleId,
        signedDate: spec.signedMs,
        ...(spec.transactionId !== undefined ? { transactionId: spec.transactionId } : {}),
        ...(spec.originalTransactionId !== undefined ? { originalTransactionId: spec.originalTransactionId } : {}),
        ...(spec.productId !== undefined ? { productId: spec.productId } : {}),
        ...(spec.purchaseMs !== undefined ? { purchaseDate: spec.purchaseMs, originalPurchaseDate: spec.purchaseMs } : {}),
        ...(spec.expiresMs !== undefined ? { expiresDate: spec.expiresMs } : {}),
        ...(spec.revocationMs !== undefined ? { revocationDate: spec.revocationMs } : {}),
        ...(spec.type !== undefined ? { type: spec.type } : {}),
        inAppOwnershipType: spec.inAppOwnershipType ?? 'PURCHASED',
        ...spec.extra,
      };
      return new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader({ alg: 'ES256', x5c }).sign(leafKeys!.privateKey);
    },
  };
}
