// What a lookup's answer means for its row (Apple's App Store Server API error codes):
// - found: the signed transaction, posted to RevenueCat as the row's fetch_token;
// - 4040010 (transaction id not found, in every environment asked): the row fails as apple_transaction_not_found;
// - 4000006 (invalid transaction id): fails for good, apple_invalid_transaction_id;
// - 5000001 (general internal error, retryable), 4040002/4040004/4040006 (account, app or original transaction
//   not found, "retryable"), other 5xx and network errors: tried again with backoff;
// - 429 (4290000): the lookups' limit (50/s per app, counted over an hour): wait until Retry-After (a UNIX time
//   in ms), the row keeping its attempts;
// - 401: the key is refused (revoked, wrong issuer, wrong key id): every lookup would fail the same way, so the
//   lookups stop, not the run (workers/appleLookup.ts);
// - any other answer fails the row with apple_<errorCode> or apple_http_<status>.
import { TRANSACTION_NOT_FOUND, type LookupResult } from './serverApiClient.js';

export const APPLE_CODES = {
  transactionNotFound: TRANSACTION_NOT_FOUND,
  invalidTransactionId: 4000006,
  rateLimitExceeded: 4290000,
  generalInternalRetryable: 5000001,
  accountNotFoundRetryable: 4040002,
  appNotFoundRetryable: 4040004,
  originalTransactionNotFoundRetryable: 4040006,
} as const;

const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  APPLE_CODES.generalInternalRetryable,
  APPLE_CODES.accountNotFoundRetryable,
  APPLE_CODES.appNotFoundRetryable,
  APPLE_CODES.originalTransactionNotFoundRetryable,
]);

export type LookupVerdict =
  | { kind: 'found'; signedTransaction: string }
  | { kind: 'permanent'; reason: string; status?: number; code?: number; message: string }
  | { kind: 'transient'; reason: string; status?: number; code?: number; message: string }
  | { kind: 'rate_limited'; status: number; code?: number; /** UNIX ms; absent: the default wait */ retryAt?: number; message: string }
  | { kind: 'unauthorized'; status: number; code?: number; message: string };

export function classifyLookup(result: LookupResult): LookupVerdict {
  if (result.kind === 'found') return { kind: 'found', signedTransaction: result.signedTransaction };
  if (result.kind === 'network') return { kind: 'transient', reason: `apple_${result.error}`, message: `App Store Server API (${result.environment}): ${result.message}` };
  const { status, errorCode: code } = result;
  const said = `App Store Server API (${result.environment}) answered ${status}${code !== undefined ? ` ${code}` : ''}${result.errorMessage ? `: ${result.errorMessage}` : ''}`;
  const withCode = code !== undefined ? { code } : {};
  if (status === 401) return { kind: 'unauthorized', status, ...withCode, message: said };
  if (status === 429 || code === APPLE_CODES.rateLimitExceeded) {
    return { kind: 'rate_limited', status, ...withCode, ...(result.retryAt !== undefined ? { retryAt: result.retryAt } : {}), message: said };
  }
  if (code === APPLE_CODES.transactionNotFound) return { kind: 'permanent', reason: 'apple_transaction_not_found', status, code, message: said };
  if (code === APPLE_CODES.invalidTransactionId) return { kind: 'permanent', reason: 'apple_invalid_transaction_id', status, code, message: said };
  if (code !== undefined && RETRYABLE_CODES.has(code)) return { kind: 'transient', reason: `apple_${code}`, status, code, message: said };
  if (status >= 500 || status === 408) return { kind: 'transient', reason: code !== undefined ? `apple_${code}` : `apple_http_${status}`, status, ...withCode, message: said };
  return { kind: 'permanent', reason: code !== undefined ? `apple_${code}` : `apple_http_${status}`, status, ...withCode, message: said };
}
