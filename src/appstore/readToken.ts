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
import { SignedTransactionError, looksLikeJws, readCheckedJws, type SignedTransaction } from './signedTransaction.js';

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
  /**
   * the token holds only base64 or base64url characters (and a JWS's dots), as its read found: JSON writes it as it
   * is, so the payload hash need not check it again (ledger/rowIdentity.ts payloadHash)
   */
  plainToken: boolean;
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

function common(environment: AppleEnvironment, bundleId: string, dateMs: number, purchases: ApplePurchase[], plainToken: boolean): ReadingCommon {
  let expiresMs: number | undefined;
  for (const p of purchases) if (p.expiresMs !== undefined && (expiresMs === undefined || p.expiresMs > expiresMs)) expiresMs = p.expiresMs;
  return { environment, bundleId, dateMs, expiresMs, purchases, originalTransactionIds: distinctOriginals(purchases), plainToken };
}

/** The distinct original transaction ids, in the order first met. */
function distinctOriginals(purchases: readonly ApplePurchase[]): string[] {
  // most receipts hold a few purchases of one or two original transactions: a list beats a Set
  if (purchases.length > 16) return [...new Set(purchases.map((p) => p.originalTransactionId))];
  const ids: string[] = [];
  for (const p of purchases) if (!ids.includes(p.originalTransactionId)) ids.push(p.originalTransactionId);
  return ids;
}

/**
 * Decodes base64 (standard or URL-safe; line breaks and spaces allowed, some exports wrap at 64 or 76 characters)
 * into a buffer it keeps from one token to the next: allocating a buffer for each receipt cost more than decoding
 * it (Buffer.from: about 3 µs for a 7 KB receipt; a write into a kept buffer, under 1). What it gives back is valid
 * until the next decode: nothing a reading holds points into it (strings and numbers only).
 */
class Base64Decoder {
  private buffer = Buffer.alloc(0);
  /** the last token decoded held only base64 or base64url characters (no white space taken out) */
  plain = false;

  /** The bytes, or undefined when `token` holds a character outside the alphabet. */
  decode(token: string): Buffer | undefined {
    const bytes = this.strict(token);
    this.plain = bytes !== undefined;
    return bytes ?? (WHITE_SPACE.test(token) ? this.strict(token.replace(/\s+/g, '')) : undefined);
  }

  /**
   * The bytes of `text` when every character of it is one of base64's or base64url's, '=' padding at the end
   * aside. A decode skips characters outside the alphabet instead of failing: one of them shows as fewer bytes than
   * the length promises, which is cheaper to see than a regular expression over the 3-12 KB of a receipt. Two
   * cases that count would miss are refused first: a character above ASCII (the decoder reads it as some byte
   * of the alphabet) and a length that leaves one character over (one skipped there costs no byte).
   */
  private strict(text: string): Buffer | undefined {
    if (Buffer.byteLength(text, 'utf8') !== text.length) return undefined;
    const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
    const characters = text.length - padding;
    if (characters % 4 === 1) return undefined;
    const expected = Math.floor((characters * 3) / 4);
    if (this.buffer.length < expected) this.buffer = Buffer.allocUnsafe(Math.max(expected, this.buffer.length * 2));
    const written = this.buffer.write(text, 'base64');
    return written === expected ? this.buffer.subarray(0, written) : undefined;
  }
}

function readReceiptToken(token: string, decoder: Base64Decoder): AppleReading {
  const bytes = decoder.decode(token);
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
  const purchases = receipt.purchases.map((p): ApplePurchase => ({
    productId: p.productId,
    transactionId: p.transactionId,
    originalTransactionId: p.originalTransactionId,
    purchaseMs: p.purchaseMs,
    expiresMs: p.expiresMs,
    revokedMs: p.cancellationMs,
  }));
  return { kind: 'receipt', ...common(environment, receipt.bundleId, receipt.creationMs, purchases, decoder.plain), receipt };
}

/** A token looksLikeJws answered for. */
function readJwsToken(token: string): AppleReading {
  let transaction: SignedTransaction;
  try {
    transaction = readCheckedJws(token);
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
    const whole = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.trunc(ms));
    purchases.push({
      productId,
      transactionId,
      originalTransactionId,
      purchaseMs: whole(transaction.purchaseMs),
      expiresMs: whole(transaction.expiresMs),
      revokedMs: whole(transaction.revocationMs),
    });
  }
  // looksLikeJws let through base64url characters and dots only
  return { kind: 'signed_transaction', ...common(environment, transaction.bundleId, Math.trunc(transaction.signedMs), purchases, true), transaction };
}

/**
 * Reads Apple fetch tokens one after another. Never throws for what a token holds: an unreadable token is `unread`.
 * A pass over many tokens keeps one reader (its decoding buffer is reused); readAppleToken reads one.
 */
export class AppleTokenReader {
  private readonly decoder = new Base64Decoder();

  read(token: string): AppleReading {
    const trimmed = token.trim();
    if (trimmed === '') return unread('empty', 'empty token');
    return looksLikeJws(trimmed) ? readJwsToken(trimmed) : readReceiptToken(trimmed, this.decoder);
  }
}

/** Reads one Apple fetch token (AppleTokenReader, for a token on its own). */
export function readAppleToken(token: string): AppleReading {
  return new AppleTokenReader().read(token);
}
