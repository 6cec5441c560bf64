// What an App Store fetch token holds, as the sandbox reads it: a base64 PKCS#7 app receipt (appleReceipt.ts)
// or a StoreKit 2 signed transaction (a JWS whose payload is read here). RevenueCat's POST /v1/receipts takes
// both as an iOS / macOS `fetch_token`. Anything else (an opaque test token, an iOS 6 transaction receipt) is
// `undefined` and goes to the deterministic token scheme (tokens.ts) as before.
import type { AppleTokenContents } from './appleContents.js';
import { readAppReceipt } from './appleReceipt.js';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** True for every environment but Production: RevenueCat keeps such purchases apart (`is_sandbox`). */
export function isSandboxEnvironment(environment: string): boolean {
  return environment !== 'Production';
}

/** Reads an App Store fetch token; undefined when it is neither an app receipt nor a signed transaction. */
export function readAppleToken(fetchToken: string): AppleTokenContents | undefined {
  const token = fetchToken.trim();
  if (JWS.test(token)) return readSignedTransaction(token);
  // A DER receipt starts 0x30 0x82 ("MII…"), a BER one 0x30 0x80 ("MIA…"): anything else is not worth parsing.
  const compact = token.replace(/\s+/g, '');
  if (!compact.startsWith('MI') || !BASE64.test(compact)) return undefined;
  try {
    return readAppReceipt(compact);
  } catch {
    // NotAReceipt, or anything odd in bytes that merely looked like a receipt: unread, never a server error.
    return undefined;
  }
}

/** A StoreKit 2 JWSTransaction: the payload only (no signature check, as for receipts). */
export function readSignedTransaction(jws: string): AppleTokenContents | undefined {
  const [headerPart, payloadPart] = jws.split('.');
  const header = decodeJson(headerPart);
  const payload = decodeJson(payloadPart);
  if (!header || typeof header.alg !== 'string' || !payload) return undefined;
  const transactionId = idText(payload.transactionId);
  const productId = typeof payload.productId === 'string' ? payload.productId : undefined;
  const purchaseDateMs = millis(payload.purchaseDate);
  // A JWS that is read but names no purchase (another signed payload, a truncated one): `transactions` stays
  // empty and the caller answers as RevenueCat does for a receipt it cannot use (7103).
  const complete = transactionId !== undefined && productId !== undefined && purchaseDateMs !== undefined;
  return {
    kind: 'signed_transaction',
    environment: typeof payload.environment === 'string' ? payload.environment : 'Production',
    bundleId: typeof payload.bundleId === 'string' ? payload.bundleId : '',
    createdMs: millis(payload.signedDate),
    originalApplicationVersion: undefined,
    originalPurchaseDateMs: millis(payload.originalPurchaseDate),
    transactions: !complete
      ? []
      : [
          {
            productId,
            transactionId,
            originalTransactionId: idText(payload.originalTransactionId) ?? transactionId,
            purchaseDateMs,
            expiresDateMs: millis(payload.expiresDate),
            revokedMs: millis(payload.revocationDate),
            quantity: typeof payload.quantity === 'number' ? payload.quantity : 1,
          },
        ],
  };
}

function decodeJson(part: string | undefined): Record<string, unknown> | undefined {
  if (!part) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Transaction ids are decimal strings (some writers send numbers). */
function idText(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

/** Epoch milliseconds; Xcode writes fractions (1697679936049.491), cut to whole milliseconds. */
function millis(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? Math.floor(value) : undefined;
}
