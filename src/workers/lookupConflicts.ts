// A looked-up row is read like any other App Store row (issue 17): RevenueCat knows a purchase by its original
// transaction id and moves it to whoever posts it last, so a row given by a transaction id whose signed transaction
// holds a purchase ANOTHER user holds is a conflict, exactly as a receipt's at admission. Its purchase is only known
// after its lookup, so the check is the worker's, right before the POST (after the row's lookup group decided, for
// a grouped row; a superseded row is not posted and not checked): against the cross-run purchase index (earlier
// runs' successes and this run's) and this run's claims of other looked-up rows (ledger/lookupConflicts.ts).
// Another user's: held by default (not posted, rows_held, conflicts.csv), posted with the run's `--on-conflict
// send` (counted a conflict sent). The rule is the run's latest ingest's, read from the run's meta only when a
// conflict is found (a `work` process serves every run, and a conflict is rare).
import type { Job } from 'bullmq';
import type { Logger } from '../logger.js';
import type { RunLedger } from '../ledger/runLedger.js';
import { applePurchaseIds } from '../appstore/purchaseIds.js';
import type { AppleLookup } from '../appstore/lookup/transactionLookup.js';
import type { ReceiptJobData } from '../types.js';

type ReceiptJob = Job<ReceiptJobData, void, string>;

export interface LookupConflictDeps {
  ledgerFor: (runId: string) => RunLedger;
  logger: Logger;
  /** a held row is settled like a row with an outcome (a parked entry of it goes) */
  settled?: (data: ReceiptJobData) => Promise<void>;
}

/** What a looked-up row does: post (its purchase is its user's to post, or the run sends conflicts anyway) or nothing (held). */
export type ConflictVerdict = { kind: 'post'; lookup: AppleLookup } | { kind: 'held' };

/** Checks the purchase of a looked-up row (`lookup.signed`) against other users' before its POST. */
export async function checkLookedUpConflict(job: ReceiptJob, lookup: AppleLookup, deps: LookupConflictDeps): Promise<ConflictVerdict> {
  if (lookup.cleared === true || lookup.signed === undefined) return { kind: 'post', lookup };
  const data = job.data;
  const cleared: AppleLookup = { ...lookup, cleared: true };
  // a signed transaction that cannot be read (or one of Xcode's) holds no purchase that can be told: posted as it is
  const purchases = applePurchaseIds(data.platform, lookup.signed);
  if (purchases.length === 0) return { kind: 'post', lookup: cleared };
  const ledger = deps.ledgerFor(data.run);
  const row = { fp: data.fp, src: data.src, line: data.line, app_user_id: data.body.app_user_id };
  const check = await ledger.checkLookedUpPurchases(row, purchases);
  if (check.kind === 'clear') return { kind: 'post', lookup: cleared };
  const hold = (await ledger.onConflict()) === 'hold';
  await ledger.recordLookedUpConflict(row, check, { hold, token: data.body.fetch_token });
  if (deps.logger.isLevelEnabled('info')) {
    deps.logger.info(
      { run: data.run, src: data.src, line: data.line, original_transaction_id: check.originalTransactionId, by: check.by, action: hold ? 'held' : 'sent' },
      hold ? "row held: its looked-up purchase is another user's (conflicts.csv)" : "row sent anyway: its looked-up purchase is another user's (conflicts.csv)",
    );
  }
  if (!hold) return { kind: 'post', lookup: cleared };
  await deps.settled?.(data);
  return { kind: 'held' };
}
