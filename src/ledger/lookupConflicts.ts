// Conflicts by purchase for rows given by a transaction id (issue 17). What such a row holds is known only once the
// worker has looked it up, right before its POST, so admission could not compare it with other users' purchases as
// it compares receipts (admit-4.lua). The worker asks here instead, after the lookup (and its lookup group's
// decision) and before the POST:
//
// - check: claimPurchase-3.lua, in the shard of the purchase's key, reads the cross-run purchase index (purchases
//   earlier runs migrated, and this run's successes: recordPurchases-2.lua) and this run's claims (the purchases
//   of looked-up rows that checked before), and, when no other user holds the purchase, claims it for the row's
//   user in the same step. Of two users' rows checking one purchase at once, one claims it, the other finds it
//   claimed: the first to check owns it, whatever becomes of its POST (as the first row by place owns a receipt's).
//   A claim has the purchase index's value form (user hash, run number, record key), so a conflict with it names
//   the other row exactly as a conflict with an earlier run's row does.
// - record: conflictQueued-3.lua, in the row's shard, holds the row (its record, rows_queued → rows_held,
//   rows_conflict, the conflicts hash) or lists it as sent anyway, by the run's onConflict; its masked transaction
//   id is noted for conflicts.csv's token column.
//
// Not seen: a receipt row of this run holding the purchase that has not succeeded yet when the looked-up row
// checks (receipt rows claim nothing: their purchases are compared among themselves by the ingest's survey).
import { maskToken } from '../ingest/fingerprint.js';
import { locationOf, META } from '../redis/keys.js';
import { userHash } from './rowIdentity.js';
import { encodePlace, encodeUser, keyBytes, shardOfKey } from './rowRecord.js';
import type { RunContext } from './runContext.js';
import type { RunNumbering } from './runNumbering.js';
import { encodePurchaseEntry, purchaseConflictSide, purchaseKey, type PurchaseId } from './purchaseIndex.js';
import { CLAIM_ANSWER, claimPurchase, conflictQueued } from './scriptCalls.js';

/** A looked-up row, as the ledger knows it: its record key, place and user. */
export interface LookedUpRow {
  fp: string;
  src: string;
  line: number;
  app_user_id: string;
}

/**
 * What the check found: no other user holds the row's purchases (each now claimed for its user), or one does:
 * by the cross-run index (`indexed`: migrated, by an earlier run or this one) or by a claim of another looked-up
 * row of this run (`claimed`); `entry` names that user's row (the purchase index's value form).
 */
export type PurchaseCheck = { kind: 'clear' } | { kind: 'conflict'; by: 'indexed' | 'claimed'; entry: Buffer; originalTransactionId: string };

export type OnConflict = 'hold' | 'send';

export class RunLookupConflicts {
  constructor(
    private readonly run: RunContext,
    private readonly numbering: RunNumbering,
  ) {}

  /** Checks (and claims) each purchase of a looked-up row in turn; the first another user holds is the conflict. */
  async check(row: LookedUpRow, purchases: readonly PurchaseId[]): Promise<PurchaseCheck> {
    if (purchases.length === 0) return { kind: 'clear' };
    const claim = encodePurchaseEntry({ userHash: userHash(row.app_user_id), runNumber: await this.numbering.runNumber(), key: keyBytes(row.fp) });
    for (const purchase of purchases) {
      const key = purchaseKey(purchase);
      const s = shardOfKey(key);
      const { code, rest } = await claimPurchase(this.run.redis, { index: this.run.index(s), shard: this.run.shard(s), key, claim });
      if (code === CLAIM_ANSWER.indexed || code === CLAIM_ANSWER.claimedByOther) {
        return { kind: 'conflict', by: code === CLAIM_ANSWER.indexed ? 'indexed' : 'claimed', entry: rest, originalTransactionId: purchase.originalTransactionId };
      }
    }
    return { kind: 'clear' };
  }

  /**
   * Records the row's conflict: held (not to be posted) or sent anyway; its masked transaction id (`token`) is
   * noted for conflicts.csv. Returns whether it was new (false: recorded before, or the row was answered already).
   */
  async record(row: LookedUpRow, conflict: Extract<PurchaseCheck, { kind: 'conflict' }>, o: { hold: boolean; token: string }): Promise<boolean> {
    const key = keyBytes(row.fp);
    const written = await conflictQueued(this.run.redis, {
      shard: this.run.shard(shardOfKey(key)),
      key,
      place: encodePlace(await this.numbering.sourceId(row.src), row.line),
      user: encodeUser(row.app_user_id),
      hold: o.hold,
      other: purchaseConflictSide(conflict.entry, conflict.originalTransactionId),
    });
    // conflicts.csv names the token masked, as for a conflict found at admission (ledger/conflicts.ts); noted again
    // by a re-run, whose record finds the conflict there already
    await this.run.redis.hset(this.run.keys.conflictTokens, locationOf(row.src, row.line), maskToken(o.token));
    return written;
  }

  /** The run's latest ingest's rule for conflicts (its --on-conflict); 'hold' when it never said. */
  async onConflict(): Promise<OnConflict> {
    return (await this.run.redis.hget(this.run.keys.meta, META.onConflict)) === 'send' ? 'send' : 'hold';
  }

  /** Keeps the rule of the ingest under way for the workers (a row given by a transaction id meets its conflicts there). */
  async setOnConflict(rule: OnConflict): Promise<void> {
    await this.run.redis.hset(this.run.keys.meta, META.onConflict, rule);
  }
}
