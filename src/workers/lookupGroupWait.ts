// A looked-up row's part in its lookup group (ledger/lookupGroups.ts): one purchase, one POST. The lookup itself
// and the POST are workers/appleLookup.ts's; this module decides between them, for a row whose user has several
// rows given by a transaction id in its run (ReceiptJobData.lookup.group, set by the ingest):
//
//   stored  → its result is in the group (a re-run takes the signed transaction from there, not from Apple)
//   waiting → not every row of the group has a result: the job goes to the delayed set (no concurrency slot, its
//             attempts untouched), for 0.5 s, then twice as long each time up to MAX_WAIT_MS; the row that gives
//             the group its last result promotes the others at once, so the waits are a safety net
//   decided → superseded (a newer transaction of its purchase is in the group: recorded like the survey's
//             superseded rows, naming the row posted) or posted; the decision to post is kept on the job first, so
//             a re-run (a busy user, a retried POST, a crash) posts without asking the group again
//
// A crash between two steps is met by doing the step again: every write to the group is idempotent, a row that
// has its outcome (or was superseded) marks itself decided and stops, and a group's deletion needs every row's
// decided mark, which each row writes only after its decision is safe (on the job, or in the ledger). A row
// without a group flag (a canary's, a retried one, one queued again by the reconcile pass) is posted on its own,
// but still gives an existing group its result, so that the group's other rows never wait for it in vain.
import { DelayedError, type Job } from 'bullmq';
import type { Logger } from '../logger.js';
import type { RunLedger } from '../ledger/runLedger.js';
import type { GroupAnswer } from '../ledger/lookupGroups.js';
import type { AppleLookup } from '../appstore/lookup/transactionLookup.js';
import { renewalDecision, type RenewalRow } from '../appstore/lookup/renewals.js';
import { promoteJobs } from '../queue/promoteJobs.js';
import type { ReceiptsQueue } from '../queue/receiptsQueue.js';
import { jobIdOf, locationOf } from '../redis/keys.js';
import type { ReceiptJobData } from '../types.js';

type ReceiptJob = Job<ReceiptJobData, void, string>;

/** A row's first wait for its group, doubled at each wait after it (a group of rows read together completes in moments). */
export const FIRST_WAIT_MS = 500;
/** The longest wait: rows of one user far apart in a large export wait hours; the last one's result wakes them. */
export const MAX_WAIT_MS = 5 * 60_000;

export interface LookupGroupDeps {
  ledgerFor: (runId: string) => RunLedger;
  /** where waiting rows are promoted from */
  queue?: Pick<ReceiptsQueue, 'getJob'>;
  logger: Logger;
  /** a superseded row is settled like a row with an outcome (a parked entry of it goes) */
  settled?: (data: ReceiptJobData) => Promise<void>;
  now?: () => number;
}

/** What a grouped row does before its lookup: nothing more (it is finished), or go on with what its group kept. */
export type GroupStart = { kind: 'finished' } | { kind: 'go'; signed?: string };

/** What a row does with its signed transaction: post it (with the lookup to post), or nothing (superseded). */
export type GroupVerdict = { kind: 'post'; lookup: AppleLookup } | { kind: 'superseded' };

export function isGrouped(lookup: AppleLookup): boolean {
  return lookup.group !== undefined && lookup.group >= 2;
}

export class LookupGroupSteps {
  private readonly now: () => number;

  constructor(private readonly deps: LookupGroupDeps) {
    this.now = deps.now ?? Date.now;
  }

  private groups(data: ReceiptJobData) {
    return this.deps.ledgerFor(data.run).lookupGroups;
  }

  /** Leaves the set of rows waiting (idempotent: most rows never joined it). */
  private async leave(job: ReceiptJob): Promise<void> {
    if (job.id !== undefined) await this.groups(job.data).leave(job.id);
  }

  /** Wakes the rows whose results are in `answer` (but this one), when this row's write gave the group its last result. */
  private async wake(data: ReceiptJobData, answer: GroupAnswer): Promise<void> {
    if (answer.kind !== 'complete' || !answer.completedNow || !this.deps.queue) return;
    const ids = answer.entries.flatMap((e) => (e.value.kind === 'result' && e.value.fp !== data.fp ? [jobIdOf(data.run, e.value.fp)] : []));
    await promoteJobs(this.deps.queue, ids);
  }

  /**
   * Before a grouped row's lookup: a row already finished (its failure recorded, or superseded, before a crash)
   * marks itself decided and stops; else the signed transaction its group kept for it, if any (no second lookup).
   */
  async start(job: ReceiptJob): Promise<GroupStart> {
    const data = job.data;
    const ledger = this.deps.ledgerFor(data.run);
    if ((await ledger.finished([data.fp]))[0] === true) {
      await ledger.lookupGroups.failed(data.body.app_user_id, locationOf(data.src, data.line));
      await this.leave(job);
      return { kind: 'finished' };
    }
    const stored = await ledger.lookupGroups.storedResult(data.body.app_user_id, locationOf(data.src, data.line));
    return stored ? { kind: 'go', signed: stored.jws } : { kind: 'go' };
  }

  /** A grouped row that decided to be posted before (a re-run): its decided mark again, in case the last one was lost. */
  async decidedBefore(job: ReceiptJob): Promise<void> {
    const data = job.data;
    await this.groups(data).decided(data.body.app_user_id, locationOf(data.src, data.line));
    await this.leave(job);
  }

  /** A row given by a transaction id whose lookup failed for good (its outcome recorded): its group waits no more for it. */
  async failed(job: ReceiptJob): Promise<void> {
    const data = job.data;
    const answer = await this.groups(data).failed(data.body.app_user_id, locationOf(data.src, data.line));
    await this.wake(data, answer);
    await this.leave(job);
  }

  /**
   * After a row's lookup found its signed transaction: post it, or not (superseded), or wait for the rest of its
   * group (throws DelayedError, the job moved to the delayed set).
   */
  async verdict(job: ReceiptJob, token: string | undefined, lookup: AppleLookup, signed: string): Promise<GroupVerdict> {
    const data = job.data;
    const groups = this.groups(data);
    const place = locationOf(data.src, data.line);
    const result = { fp: data.fp, app_user_id: data.body.app_user_id, jws: signed };
    const found: AppleLookup = { ...lookup, signed };
    if (!isGrouped(lookup)) {
      // posted on its own: a group of its user (it was queued again without its flag) gets its result all the same
      await this.wake(data, await groups.offer(place, result, { decided: true }));
      return { kind: 'post', lookup: found };
    }
    const answer = await groups.offer(place, result);
    // no group any more (every row decided, or its ttl ran out): posted on its own
    if (answer.kind === 'none' || answer.kind === 'closed') {
      await this.leave(job);
      return { kind: 'post', lookup: found };
    }
    if (answer.kind === 'incomplete') return this.wait(job, token, found);
    await this.wake(data, answer);
    const rows: RenewalRow[] = answer.entries.flatMap((e) => (e.value.kind === 'result' ? [{ place: e.place, app_user_id: e.value.app_user_id, jws: e.value.jws }] : []));
    const decision = renewalDecision(rows, place);
    if (decision.kind === 'superseded') {
      await this.deps.ledgerFor(data.run).supersedeAdmitted(data.fp, { src: data.src, line: data.line, app_user_id: data.body.app_user_id, by: decision.by });
      await groups.decided(data.body.app_user_id, place);
      await this.leave(job);
      await this.deps.settled?.(data);
      if (this.deps.logger.isLevelEnabled('debug')) {
        this.deps.logger.debug({ run: data.run, src: data.src, line: data.line, by: decision.by }, 'row superseded: a newer transaction of its purchase is posted');
      }
      return { kind: 'superseded' };
    }
    const decided: AppleLookup = { ...found, decided: 'post' };
    await job.updateData({ ...data, lookup: decided });
    await groups.decided(data.body.app_user_id, place);
    await this.leave(job);
    return { kind: 'post', lookup: decided };
  }

  /** Back to the delayed set until the group has every result (or the wait is over: it asks again). */
  private async wait(job: ReceiptJob, token: string | undefined, lookup: AppleLookup): Promise<never> {
    const data = job.data;
    const waits = lookup.waits ?? 0;
    const ms = Math.min(FIRST_WAIT_MS * 2 ** Math.min(waits, 20), MAX_WAIT_MS);
    await job.updateData({ ...data, lookup: { ...lookup, waits: waits + 1 } });
    if (this.deps.logger.isLevelEnabled('debug'))
      this.deps.logger.debug({ run: data.run, src: data.src, line: data.line, waitMs: ms }, 'row waits for the other rows of its lookup group');
    const groups = this.groups(data);
    if (job.id !== undefined) await groups.wait(job.id);
    await job.moveToDelayed(this.now() + ms, token);
    // The last result may have come between this row's write and its move, when it could not be promoted: it is
    // promoted now instead of at the end of its wait.
    if (job.id !== undefined && this.deps.queue && (await groups.complete(data.body.app_user_id))) await promoteJobs(this.deps.queue, [job.id]);
    throw new DelayedError();
  }
}
