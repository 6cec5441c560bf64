// The run ledger: everything Redis knows about one run (counters, which rows were seen, every outcome,
// rejection, duplicate and conflict), and the cross-run index of migrated tokens that later runs consult.
// This class is the one door to it; the work is done by its parts, one concept each:
//   runMeta.ts      the run's own facts (start, ingest state, progress per source, canary)
//   runNumbering.ts numbers records store instead of names (sources, dictionary, run number, start time)
//   admission.ts    what to do with each row read; rejected and duplicate rows
//   outcomes.ts     final answers, retries' re-opening and history, the rows' states
//   statistics.ts   counters, requests over time and by latency, recent errors
//   conflicts.ts    rows whose token another user has (in this run or an earlier one)
//   lookupGroups.ts the rows given by a transaction id of one user, compared after their lookups
//   lookupConflicts.ts a looked-up row's purchase against other users' (held, or sent anyway)
//   verifyStore.ts  what the last `verify` pass found
//   scriptCalls.ts  one typed function per Lua script
//
// Layout (src/redis/keys.ts): a run's own keys (meta, sources, dictionary, verify results) under one hash tag;
// its rows, their counters and the cross-run index spread over SHARDS hash tags by the first byte of each row's
// token fingerprint (ledger/rowIdentity.ts). Within a shard, rows live in a table of small buckets that Redis
// keeps as listpacks (src/redis/scripts/includes/table.lua), one compact record per row (ledger/rowRecord.ts),
// with no key per row. Every multi-key update is a Lua script on the keys of one shard (one slot on a Redis
// Cluster), so counters never drift from the records they count, even when a worker is killed between two
// writes or a row is answered twice; readers sum the shards. Nothing here waits for replicas: the ledger is the
// source of truth, an answer is recorded even for a row whose admission a failover lost, and a reconcile pass
// queues again what was admitted and has neither outcome nor job.
import type { Duplicate, Outcome, ReceiptTally, Rejection, RunState, Superseded, SupersededPlace } from '../types.js';
import type { StateMismatch } from '../state/mismatch.js';
import type { RedisClient } from '../redis/connection.js';
import { META, type RunKeys } from '../redis/keys.js';
import { loadScripts } from '../redis/scripts.js';
import { RunAdmission, type Admission, type AdmitOptions, type AdmitRow } from './admission.js';
import { RunConflicts, type Conflict, type ConflictToken } from './conflicts.js';
import { RunOutcomes, type FailedRecord, type RecordOptions, type RowState } from './outcomes.js';
import { RunContext } from './runContext.js';
import { RunMeta, type CanaryRecord } from './runMeta.js';
import { RunNumbering } from './runNumbering.js';
import { RunStatistics, type RecentError, type RequestSample } from './statistics.js';
import type { TimelinePoint } from './timeline.js';
import { VerifyStore, type VerifySummary } from './verifyStore.js';
import { LookupGroups } from './lookupGroups.js';
import { RunLookupConflicts, type LookedUpRow, type OnConflict, type PurchaseCheck } from './lookupConflicts.js';
import type { PurchaseId } from './purchaseIndex.js';

export type { Admission, AdmitOptions, AdmitRow } from './admission.js';
export type { Conflict, ConflictToken } from './conflicts.js';
export type { FailedRecord, RecordOptions, RowState } from './outcomes.js';
export type { CanaryRecord } from './runMeta.js';
export type { RecentError, RequestSample } from './statistics.js';
export type { VerifySummary } from './verifyStore.js';
export type { LookedUpRow, OnConflict, PurchaseCheck } from './lookupConflicts.js';

export class RunLedger {
  readonly keys: RunKeys;
  /** the run's lookup groups: rows given by a transaction id of one user, compared after their lookups */
  readonly lookupGroups: LookupGroups;
  protected readonly run: RunContext;
  protected readonly numbering: RunNumbering;
  protected readonly meta: RunMeta;
  private readonly admission: RunAdmission;
  private readonly answers: RunOutcomes;
  private readonly statistics: RunStatistics;
  private readonly conflictRows: RunConflicts;
  private readonly verify: VerifyStore;
  private readonly lookupConflicts: RunLookupConflicts;

  constructor(
    redis: RedisClient,
    readonly prefix: string,
    readonly runId: string,
  ) {
    loadScripts(redis);
    this.run = new RunContext(redis, prefix, runId);
    this.keys = this.run.keys;
    this.numbering = new RunNumbering(this.run);
    this.meta = new RunMeta(this.run, this.numbering);
    this.admission = new RunAdmission(this.run, this.numbering);
    this.answers = new RunOutcomes(this.run, this.numbering);
    this.statistics = new RunStatistics(this.run, this.numbering);
    this.conflictRows = new RunConflicts(this.run, this.numbering);
    this.verify = new VerifyStore(this.run);
    this.lookupGroups = new LookupGroups(redis, prefix, runId);
    this.lookupConflicts = new RunLookupConflicts(this.run, this.numbering);
  }

  // The run's own facts (runMeta.ts)

  /** Creates the run if new (keeps the first start time) and marks an ingest as running. */
  beginIngest(sources: string[], now = new Date()): Promise<void> {
    return this.meta.beginIngest(sources, now);
  }

  /** Keeps what the ingest's survey counted of the App Store rows, for summary.json (the last ingest's counts). */
  async noteReceipts(counts: ReceiptTally): Promise<void> {
    await this.run.redis.hset(this.run.keys.meta, META.receipts, JSON.stringify(counts));
  }

  endIngest(): Promise<void> {
    return this.meta.endIngest();
  }

  markFinished(now = new Date()): Promise<void> {
    return this.meta.markFinished(now);
  }

  exists(): Promise<boolean> {
    return this.meta.exists();
  }

  /** Every row of `source` up to `line` is queued or accounted for: a restarted ingest may skip them. */
  setProgress(source: string, line: number): Promise<void> {
    return this.meta.setProgress(source, line);
  }

  /** The line up to which `source` was ingested, 0 when never. */
  progress(source: string): Promise<number> {
    return this.meta.progress(source);
  }

  /** Keeps what a canary did (undefined: forgets it), for the run's report. */
  saveCanary(record: CanaryRecord | undefined): Promise<void> {
    return this.meta.saveCanary(record);
  }

  canary(): Promise<CanaryRecord | undefined> {
    return this.meta.canary();
  }

  // Numbers (runNumbering.ts)

  /** The number that stands for a source in this run's compact records. */
  sourceId(source: string): Promise<number> {
    return this.numbering.sourceId(source);
  }

  /** Source names by number. */
  sources(): Promise<string[]> {
    return this.numbering.sources();
  }

  /** This run's number in the cross-run index. */
  runNumber(): Promise<number> {
    return this.numbering.runNumber();
  }

  // Admission (admission.ts)

  /** Decides what to do with each row read (see Admission), in one script call per shard the rows fall in. */
  admit(rows: AdmitRow[], opts: AdmitOptions = {}): Promise<Admission[]> {
    return this.admission.admit(rows, opts);
  }

  /** Records a rejected row once per place in the input; returns whether it was new. */
  reject(rejection: Rejection): Promise<boolean> {
    return this.admission.reject(rejection);
  }

  duplicate(dup: Duplicate): Promise<boolean> {
    return this.admission.duplicate(dup);
  }

  /** Records superseded App Store rows, each once per place; returns how many were new. */
  supersede(rows: readonly Superseded[]): Promise<number> {
    return this.admission.supersede(rows);
  }

  /**
   * Records an admitted row given by a transaction id as superseded after its lookup (a newer transaction of the
   * same purchase is in its user's lookup group: ledger/lookupGroups.ts); returns whether it was new.
   */
  supersedeAdmitted(fp: string, row: Superseded): Promise<boolean> {
    return this.admission.supersedeAdmitted(fp, row);
  }

  superseded(): AsyncIterable<SupersededPlace> {
    return this.admission.superseded();
  }

  rejections(): AsyncIterable<Rejection> {
    return this.admission.rejections();
  }

  duplicates(): AsyncIterable<Duplicate> {
    return this.admission.duplicates();
  }

  // Outcomes (outcomes.ts)

  /** Records a row's final answer and the request that brought it; false when onlyIfAbsent found one there. */
  recordAnswer(outcome: Outcome, opts: RecordOptions = {}): Promise<boolean> {
    return this.answers.recordAnswer(outcome, opts);
  }

  /** Writes a row's outcome without a request to count (the safety nets use onlyIfAbsent). */
  recordOutcome(outcome: Outcome, opts: Omit<RecordOptions, 'request'> = {}): Promise<boolean> {
    return this.answers.recordAnswer(outcome, opts);
  }

  /** Every final outcome, succeeded and failed (a failed one without its input, body or token). */
  outcomes(): AsyncIterable<Outcome> {
    return this.answers.outcomes();
  }

  /** The final outcome of the row with this record key, if it has one. */
  outcome(fp: string): Promise<Outcome | undefined> {
    return this.answers.outcome(fp);
  }

  /** Failed outcomes with their record as read, for a retry to select from and hand back to `reopen`. */
  failedRecords(): AsyncIterable<FailedRecord> {
    return this.answers.failedRecords();
  }

  /** Makes failed rows pending again (only those still as read); returns how many were re-opened. */
  async reopen(records: { fp: string; stored: string }[]): Promise<number> {
    const n = await this.answers.reopen(records);
    if (n > 0) await this.statistics.countRetry();
    return n;
  }

  /** Earlier outcomes of rows that were answered again (retries): shard by shard, each oldest first. */
  history(): AsyncIterable<Outcome> {
    return this.answers.history();
  }

  /** Whether each of these rows (record keys) has a final answer, or was superseded or held after its lookup. */
  finished(fps: string[]): Promise<boolean[]> {
    return this.answers.finished(fps);
  }

  /** Every row admitted into the run (not rejected, not a duplicate): its key, place, user and where it stands. */
  rows(): AsyncIterable<RowState> {
    return this.answers.rows();
  }

  /** Rows skipped because an earlier run had migrated them. */
  alreadyMigrated(): AsyncIterable<{ src: string; line: number; fp: string }> {
    return this.answers.alreadyMigrated();
  }

  // Statistics (statistics.ts)

  /** Counts one HTTP request that brought no final answer (a final answer's request is counted with it). */
  countRequest(request: RequestSample & { fp?: string }): Promise<void> {
    return this.statistics.countRequest(request);
  }

  /** The request rate the workers pace this run's requests at, for the report's rate over time. */
  recordRate(ratePerSecond: number, at = Date.now()): Promise<void> {
    return this.statistics.recordRate(ratePerSecond, at);
  }

  /** The App Store Server API lookups' rate, beside RevenueCat's in the timeline (only while the run has lookups). */
  recordLookupRate(ratePerSecond: number, at = Date.now()): Promise<void> {
    return this.statistics.recordLookupRate(ratePerSecond, at);
  }

  /** Marks the run as one whose rows were looked up (`status` and the bar then show the lookups' rate). */
  markLookups(): Promise<void> {
    return this.statistics.markLookups();
  }

  /** Whether any row of the run was looked up in the App Store Server API. */
  hadLookups(): Promise<boolean> {
    return this.statistics.hadLookups();
  }

  timeline(): Promise<TimelinePoint[]> {
    return this.statistics.timeline();
  }

  latencyBuckets(): Promise<number[]> {
    return this.statistics.latencyBuckets();
  }

  recentErrors(): Promise<RecentError[]> {
    return this.statistics.recentErrors();
  }

  /** The run's counters (summed over its shards) and state. */
  state(): Promise<RunState> {
    return this.statistics.state();
  }

  // Conflicts (conflicts.ts)

  conflicts(): AsyncIterable<Conflict> {
    return this.conflictRows.conflicts();
  }

  /** Notes the masked tokens of conflicting rows, for conflicts.csv. */
  noteConflictTokens(tokens: readonly ConflictToken[]): Promise<void> {
    return this.conflictRows.noteTokens(tokens);
  }

  /** The masked tokens of the run's conflicting rows, by place (`<source>#<line>`). */
  conflictTokens(): Promise<Map<string, string>> {
    return this.conflictRows.tokens();
  }

  // Conflicts by purchase of rows given by a transaction id, after their lookup (lookupConflicts.ts)

  /** Checks a looked-up row's purchases against other users' (the cross-run index, this run's claims), claiming them if free. */
  checkLookedUpPurchases(row: LookedUpRow, purchases: readonly PurchaseId[]): Promise<PurchaseCheck> {
    return this.lookupConflicts.check(row, purchases);
  }

  /** Records a looked-up row's conflict by purchase, held or sent anyway; returns whether it was new. */
  recordLookedUpConflict(row: LookedUpRow, conflict: Extract<PurchaseCheck, { kind: 'conflict' }>, o: { hold: boolean; token: string }): Promise<boolean> {
    return this.lookupConflicts.record(row, conflict, o);
  }

  /** What the run's latest ingest said to do with conflicts ('hold' unless it said 'send'). */
  onConflict(): Promise<OnConflict> {
    return this.lookupConflicts.onConflict();
  }

  /** Keeps the ingest's rule for conflicts in the run's meta, for the workers. */
  setOnConflict(rule: OnConflict): Promise<void> {
    return this.lookupConflicts.setOnConflict(rule);
  }

  // Verify results (verifyStore.ts)

  /** Keeps the result of a `verify` pass (replacing the previous one) for the run's report. */
  saveVerify(result: VerifySummary, mismatches: StateMismatch[]): Promise<void> {
    return this.verify.save(result, mismatches);
  }

  verifySummary(): Promise<VerifySummary | undefined> {
    return this.verify.summary();
  }

  verifyMismatches(): AsyncIterable<StateMismatch> {
    return this.verify.mismatches();
  }
}
