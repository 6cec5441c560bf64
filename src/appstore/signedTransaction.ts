// A StoreKit 2 signed transaction (JWSTransaction): a compact JWS, ES256, whose protected header carries the
// certificate chain (`x5c`: 3 certificates from the App Store, 1 from Xcode) and whose payload is the
// transaction as JSON. RevenueCat's POST /v1/receipts takes it as the iOS `fetch_token`. Only the payload is read
// (jose's decodeJwt: base64url and JSON, no signature check; RevenueCat verifies with Apple).
//
// Payload fields (Apple's JWSTransactionDecodedPayload): ids are strings, dates are milliseconds since the epoch
// as JSON numbers; Xcode's StoreKit testing writes fractions of a millisecond (1697679936049.7297), kept as
// written here. `environment` is 'Production', 'Sandbox', 'Xcode' (or 'LocalTesting' in Apple's library).
import { decodeJwt } from 'jose';

/** What a signed transaction says. Dates are epoch milliseconds as Apple wrote them (maybe fractional). */
export interface SignedTransaction {
  environment: string;
  bundleId: string;
  /** when the App Store signed it: orders two signed transactions of one user */
  signedMs: number;
  /** Apple's test vectors carry payloads with none of the purchase fields; a real transaction has all three */
  transactionId?: string;
  originalTransactionId?: string;
  productId?: string;
  purchaseMs?: number;
  expiresMs?: number;
  revocationMs?: number;
  /** 'Auto-Renewable Subscription', 'Non-Consumable', 'Consumable', 'Non-Renewing Subscription' */
  type?: string;
  /** 'PURCHASED' or 'FAMILY_SHARED' */
  inAppOwnershipType?: string;
}

/** A JWS whose payload is not a signed transaction. The message names the field, never its value. */
export class SignedTransactionError extends Error {
  override name = 'SignedTransactionError';
}

/** A compact JWS: three base64url segments (the third, the signature, is not read but must be there). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function looksLikeJws(token: string): boolean {
  return token.startsWith('eyJ') && COMPACT_JWS.test(token);
}

function text(payload: Record<string, unknown>, field: string): string | undefined {
  const value = payload[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw new SignedTransactionError(`${field} is not a string`);
  return value;
}

function time(payload: Record<string, unknown>, field: string): number | undefined {
  const value = payload[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new SignedTransactionError(`${field} is not a time in milliseconds`);
  return value;
}

/** Reads a compact JWS. Throws SignedTransactionError when it is not a signed transaction. */
export function readSignedTransaction(jws: string): SignedTransaction {
  if (!COMPACT_JWS.test(jws)) throw new SignedTransactionError('not a compact JWS');
  return readCheckedJws(jws);
}

/**
 * readSignedTransaction for a token looksLikeJws has already answered for: the form's check, a regular expression
 * over the whole token (4-6 KB with the header's certificates), was most of a read when it ran twice.
 */
export function readCheckedJws(jws: string): SignedTransaction {
  let payload: Record<string, unknown>;
  try {
    payload = decodeJwt(jws);
  } catch {
    // jose's message may quote what it could not parse: not repeated here.
    throw new SignedTransactionError('JWS payload is not a JSON object');
  }
  const environment = text(payload, 'environment');
  const bundleId = text(payload, 'bundleId');
  const signedMs = time(payload, 'signedDate');
  if (environment === undefined) throw new SignedTransactionError('no environment');
  if (bundleId === undefined) throw new SignedTransactionError('no bundleId');
  if (signedMs === undefined) throw new SignedTransactionError('no signedDate');
  const transaction: SignedTransaction = { environment, bundleId, signedMs };
  const optional = {
    transactionId: text(payload, 'transactionId'),
    originalTransactionId: text(payload, 'originalTransactionId'),
    productId: text(payload, 'productId'),
    purchaseMs: time(payload, 'purchaseDate'),
    expiresMs: time(payload, 'expiresDate'),
    revocationMs: time(payload, 'revocationDate'),
    type: text(payload, 'type'),
    inAppOwnershipType: text(payload, 'inAppOwnershipType'),
  };
  for (const [key, value] of Object.entries(optional)) if (value !== undefined) Object.assign(transaction, { [key]: value });
  const ids = [optional.transactionId, optional.originalTransactionId, optional.productId].filter((v) => v !== undefined).length;
  // All three or none (Apple's test vectors): a transaction half there cannot be grouped with others.
  if (ids !== 0 && ids !== 3) throw new SignedTransactionError('transactionId, originalTransactionId and productId are not all there');
  return transaction;
}
