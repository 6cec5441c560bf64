// A row that carries an Apple transaction id instead of a receipt (issue 17). Its job keeps the id in two places:
// as body.fetch_token, which is what the ledger keys a row by (so a transaction id is "migrated" once, a duplicate
// line is a duplicate, and failed.csv gives the id back in its column), and in `lookup`, which tells the worker
// to turn it into its signed transaction (App Store Server API) and post that instead. The signed transaction is
// kept in `lookup.signed` once a job goes back to the queue after its lookup (a busy user, a retried POST), so a
// row is looked up once. Several such rows of one user form a lookup group: one POST per purchase
// (ledger/lookupGroups.ts).
import type { Platform, ReceiptBody } from '../../revenuecat/fields.js';

export interface AppleLookup {
  /** decimal digits (Apple's transaction ids) */
  transaction_id: string;
  /** the row's bundle_id cell; absent: the configured appleBundleIds */
  bundle_id?: string;
  /** the signed transaction (JWS), once looked up */
  signed?: string;
  /**
   * the size of the row's lookup group, when its user has several rows given by a transaction id in the run (set by
   * the ingest): after its lookup the row waits for the others and is posted only if no newer transaction of its
   * purchase is among them (ledger/lookupGroups.ts, workers/lookupGroupWait.ts)
   */
  group?: number;
  /** a grouped row that decided to be posted: a re-run (a busy user, a crash) posts it without asking its group again */
  decided?: 'post';
  /** how many times a grouped row went back to wait for its group (its next wait is longer) */
  waits?: number;
  /**
   * its purchase was checked against other users' and is this row's to post (no other user holds it, or the run
   * sends conflicts anyway): a re-run posts without checking again (workers/lookupConflicts.ts)
   */
  cleared?: true;
}

/** The App Store's X-Platform values: the rows whose transaction ids Apple's API knows. */
export const APPLE_PLATFORMS: readonly Platform[] = ['ios', 'macos', 'uikitformac'];

const TRANSACTION_ID = /^\d{1,32}$/;

export function isAppleTransactionId(text: string): boolean {
  return TRANSACTION_ID.test(text);
}

/** Why a transaction_id cell cannot be used, or undefined when it can. Never echoes more than a few characters. */
export function transactionIdProblem(text: string, column: string): string | undefined {
  if (isAppleTransactionId(text)) return undefined;
  const shown = text.length <= 24 ? text : `${text.slice(0, 21)}…`;
  const where = column === 'transaction_id' ? '' : ` (column "${column}")`;
  return `transaction_id "${shown}"${where} is not an Apple transaction id: it must be decimal digits only, such as 2000000123456789`;
}

/**
 * The lookup a job needs, or undefined when it posts its fetch_token as it is. Besides the `lookup` the ingester
 * sets, an App Store row whose fetch_token is digits only is a transaction id: no receipt (base64 of a PKCS#7
 * structure) or signed transaction (a JWS, with dots) is; that is how a `retry`, which rebuilds a job from the
 * stored body, still looks the row up.
 */
export function lookupOf(data: { platform: Platform; body: Pick<ReceiptBody, 'fetch_token'>; lookup?: AppleLookup | undefined }): AppleLookup | undefined {
  if (data.lookup) return data.lookup;
  if (APPLE_PLATFORMS.includes(data.platform) && isAppleTransactionId(data.body.fetch_token)) return { transaction_id: data.body.fetch_token };
  return undefined;
}

/** The body the worker posts: the signed transaction as fetch_token when the row was looked up. */
export function postedBody<B extends Pick<ReceiptBody, 'fetch_token'>>(data: { body: B; lookup?: AppleLookup | undefined }): B {
  const signed = data.lookup?.signed;
  return signed === undefined ? data.body : { ...data.body, fetch_token: signed };
}
