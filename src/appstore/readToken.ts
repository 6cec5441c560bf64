// One entry for an Apple fetch token as an export holds it: a base64 app receipt (StoreKit 1), a StoreKit 2 signed
// transaction (JWS), or something this tool cannot read. Both readable kinds are brought to one shape, so the
// ingester can compare a user's receipts and signed transactions by purchase without caring which is which.
//
// Unreadable is not invalid: an iOS 6 transaction receipt, a token cut short, text that is no receipt at all come
// back as `unread` with a reason, never as an exception; the ingester sends such a token as it is and RevenueCat
// says what it is. No signature is checked here (RevenueCat verifies every token with Apple), and nothing here
// logs: neither the token nor a part of it ever leaves this function except inside the reading.
import { BerError } from './ber.js';
import { ReceiptContentError, readAppReceipt, type AppReceipt } from './appReceipt.js';
import { SignedTransactionError, looksLikeJws, readSignedTransaction, type SignedTransaction } from './signedTransaction.js';

export type AppleEnvironment = 'production' | 'sandbox' | 'xcode';

/** One purchase (one transaction) as both kinds of token state it. Times are whole epoch milliseconds. */
export interface ApplePurchase {
  productId: string;
  transactionId: string;
  /** the purchase's identity at RevenueCat: renewals and restores share it */
  originalTransactionId: string;
  purchaseMs?: number;
  /** subscription expiry; absent for purchases that do not expire (and for an empty 1708) */
  expiresMs?: number;
  /** cancellation (receipt 1712) or revocation (signed transaction revocationDate) */
  revokedMs?: number;
}

interface ReadingCommon {
  environment: AppleEnvironment;
  bundleId: string;
  /**
   * The date that orders two tokens of one user, newest last: a receipt's creation date (type 12), a signed
   * transaction's signedDate. Ties between signed transactions are broken by `expiresMs`.
   */
  dateMs: number;
  /** the latest expiry among the purchases, if any purchase expires */
  expiresMs?: number;
  purchases: ApplePurchase[];
  /** the distinct original transaction ids of `purchases`, in the order first met */
  originalTransactionIds: string[];
}

export interface ReceiptReading extends ReadingCommon {
  kind: 'receipt';
  receipt: AppReceipt;
}

export interface SignedTransactionReading extends ReadingCommon {
  kind: 'signed_transaction';
  transaction: SignedTransaction;
}

/**
 * Why a token was not read:
 * - `empty`: nothing but white space;
 * - `transaction_receipt`: an iOS 6 style transaction receipt (base64 of an old-style plist with `signature` and
 *   `purchase-info`), which holds one transaction in a format this tool does not read;
 * - `not_base64`: neither a JWS nor base64;
 * - `truncated`: base64 of an encoding that stops before its end (a column too narrow, a bad copy);
 * - `not_receipt`: base64 of something that is not an app receipt, or one missing a field every receipt has;
 * - `not_signed_transaction`: a JWS whose payload is not a signed transaction;
 * - `unknown_environment`: an environment value this tool does not know.
 */
export type UnreadWhy = 'empty' | 'transaction_receipt' | 'not_base64' | 'truncated' | 'not_receipt' | 'not_signed_transaction' | 'unknown_environment';

export interface UnreadToken {
  kind: 'unread';
  why: UnreadWhy;
  /** what was wrong, in words that never quote the token */
  detail: string;
}

export type AppleReading = ReceiptReading | SignedTransactionReading | UnreadToken;

const WHITE_SPACE = /\s/;

function unread(why: UnreadWhy, detail: string): UnreadToken {
  return { kind: 'unread', why, detail };
}

/** Receipt type 0 and signed-transaction `environment`, as the values Apple writes. */
function environmentOf(name: string | undefined): AppleEnvironment | undefined {
  switch (name) {
    // Apple documents no environment attribute for app receipts; a receipt without one is taken as production.
    case undefined:
    case 'Production':
      return 'production';
    case 'ProductionSandbox':
    case 'Sandbox':
      return 'sandbox';
    // LocalTesting is Apple's server library's own test environment: like Xcode, no store and no money.
    case 'Xcode':
    case 'LocalTesting':
      return 'xcode';
    default:
      return undefined;
  }
}

function common(environment: AppleEnvironment, bundleId: string, dateMs: number, purchases: ApplePurchase[]): ReadingCommon {
  let expiresMs: number | undefined;
  const ids = new Set<string>();
  for (const p of purchases) {
    ids.add(p.originalTransactionId);
    if (p.expiresMs !== undefined && (expiresMs === undefined || p.expiresMs > expiresMs)) expiresMs = p.expiresMs;
  }
  return { environment, bundleId, dateMs, ...(expiresMs !== undefined ? { expiresMs } : {}), purchases, originalTransactionIds: [...ids] };
}

/** Decoded base64 (standard or URL-safe), or undefined when `text` holds a character outside the alphabet. */
function decodeStrictBase64(text: string): Buffer | undefined {
  if (text.length % 4 === 1) return undefined;
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const bytes = Buffer.from(text, 'base64');
  // Buffer.from skips characters outside the alphabet instead of failing: one of them shows as a shorter result.
  // Cheaper than a regular expression over the 3-12 KB of a receipt.
  return bytes.length === Math.floor(((text.length - padding) * 3) / 4) ? bytes : undefined;
}

/** Decoded base64, line breaks and spaces allowed (some exports wrap at 64 or 76 characters). */
function decodeBase64(token: string): Buffer | undefined {
  return decodeStrictBase64(token) ?? (WHITE_SPACE.test(token) ? decodeStrictBase64(token.replace(/\s+/g, '')) : undefined);
}

function readReceiptToken(token: string): AppleReading {
  const bytes = decodeBase64(token);
  if (!bytes) return unread('not_base64', 'neither a JWS nor base64');
  // An iOS 6 transaction receipt: `{ "signature" = "…"; "purchase-info" = "…"; … }` (an old-style plist).
  if (bytes[0] === 0x7b && bytes.includes('purchase-info')) return unread('transaction_receipt', 'an iOS 6 style transaction receipt');
  // Every app receipt starts with the SEQUENCE of its ContentInfo: anything else is some other data, not a
  // receipt cut short.
  if (bytes[0] !== 0x30) return unread('not_receipt', 'not a PKCS#7 ContentInfo');
  let receipt: AppReceipt;
  try {
    receipt = readAppReceipt(bytes);
  } catch (error) {
    if (error instanceof BerError) return error.truncated ? unread('truncated', `receipt ${error.message}`) : unread('not_receipt', `not BER: ${error.message}`);
    if (error instanceof ReceiptContentError) return unread('not_receipt', error.message);
    throw error;
  }
  const environment = environmentOf(receipt.environment);
  if (!environment) return unread('unknown_environment', 'receipt environment (type 0) is not Production, ProductionSandbox or Xcode');
  const purchases = receipt.purchases.map((p): ApplePurchase => {
    const purchase: ApplePurchase = { productId: p.productId, transactionId: p.transactionId, originalTransactionId: p.originalTransactionId, purchaseMs: p.purchaseMs };
    if (p.expiresMs !== undefined) purchase.expiresMs = p.expiresMs;
    if (p.cancellationMs !== undefined) purchase.revokedMs = p.cancellationMs;
    return purchase;
  });
  return { kind: 'receipt', ...common(environment, receipt.bundleId, receipt.creationMs, purchases), receipt };
}

function readJwsToken(token: string): AppleReading {
  let transaction: SignedTransaction;
  try {
    transaction = readSignedTransaction(token);
  } catch (error) {
    if (error instanceof SignedTransactionError) return unread('not_signed_transaction', error.message);
    throw error;
  }
  const environment = environmentOf(transaction.environment);
  if (!environment) return unread('unknown_environment', 'signed transaction environment is not Production, Sandbox or Xcode');
  const purchases: ApplePurchase[] = [];
  const { transactionId, originalTransactionId, productId } = transaction;
  if (transactionId !== undefined && originalTransactionId !== undefined && productId !== undefined) {
    // Xcode writes fractions of a millisecond; the shared shape holds whole milliseconds.
    const purchase: ApplePurchase = { productId, transactionId, originalTransactionId };
    if (transaction.purchaseMs !== undefined) purchase.purchaseMs = Math.trunc(transaction.purchaseMs);
    if (transaction.expiresMs !== undefined) purchase.expiresMs = Math.trunc(transaction.expiresMs);
    if (transaction.revocationMs !== undefined) purchase.revokedMs = Math.trunc(transaction.revocationMs);
    purchases.push(purchase);
  }
  return { kind: 'signed_transaction', ...common(environment, transaction.bundleId, Math.trunc(transaction.signedMs), purchases), transaction };
}

/** Reads an Apple fetch token. Never throws for what the token holds: an unreadable token is `unread`. */
export function readAppleToken(token: string): AppleReading {
  const trimmed = token.trim();
  if (trimmed === '') return unread('empty', 'empty token');
  return looksLikeJws(trimmed) ? readJwsToken(trimmed) : readReceiptToken(trimmed);
}
