// The ingester: reads every source, validates each row, and queues the good ones in chunks. Every row read
// ends in the ledger as queued, rejected (with its line and reason) or a duplicate of an earlier line.
// When Redis is at maxmemory every write waits until it is accepted (redis/memoryPressure.ts): reading pauses
// with one warning, and goes on where it stopped once memory is freed.
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics/metrics.js';
import type { Admission, AdmitRow, RunLedger } from '../ledger/runLedger.js';
import type { PurchaseClaim } from '../ledger/admission.js';
import type { PurchaseIdentity } from '../appstore/purchaseIds.js';
import { roomBelowHighWater } from '../queue/highWater.js';
import { MemoryPressure } from '../redis/memoryPressure.js';
import { retryThroughOutage } from '../redis/connectionLoss.js';
import { enqueueRows, type ReceiptsQueue } from '../queue/receiptsQueue.js';
import { promoteJobs } from '../queue/promoteJobs.js';
import { jobIdOf, locationOf } from '../redis/keys.js';
import type { ReceiptJobData, Superseded } from '../types.js';
import { planColumns, type ColumnOptions, type ColumnPlan } from './columns.js';
import { isExpectationColumn } from './expectations.js';
import { tokenFingerprint } from '../ledger/rowIdentity.js';
import { keyText } from '../ledger/rowRecord.js';
import type { SourceCatalog } from '../ledger/sourceCatalog.js';
import type { CsvItem, CsvRecord } from './readCsv.js';
import { asRead, checkRow } from './rowCheck.js';
import { expandSource, isS3Url, type SourceDeps, type SourceEntry } from './sources.js';
import { decodeSourceRecord, encodeSourceRecord, identityChange, type SourceIdentity } from './sourceRecord.js';
import type { InputEncoding } from './textEncoding.js';
import { expiryPriority, rowPriority, type TokenExpiry } from './tokenExpiry.js';
import { waitForRedisRoom } from './redisRoom.js';
import type { ReceiptCounts } from './receiptSurvey.js';
import { readAppleToken } from '../appstore/readToken.js';
import { factsOf, type TokenFacts } from './tokenFacts.js';
import { isApplePlatform, mayHoldAppleRows, surveyPass, type SurveyDecisions } from './surveyPass.js';
import { appleRowProblem, type AppleRowRules } from './surveyBook.js';
import type { KeyPlan } from '../revenuecat/keyRing.js';

export interface IngestOptions {
  runId: string;
  sources: string[];
  columns: ColumnOptions;
  chunkSize: number;
  /** a chunk also ends once its rows hold about this many bytes of receipts (default CHUNK_BYTES) */
  chunkBytes?: number;
  maxAttempts: number;
  /** pause reading while more rows than this wait in the queue (0 = never) */
  highWaterMark: number;
  /** send rows again even when an earlier run migrated them */
  force?: boolean;
  /** a row whose token another user has (in this run or an earlier one): held back (default) or sent anyway */
  onConflict?: 'hold' | 'send';
  /** Stops reading between chunks when set (SIGINT): what was read is queued, the rest is read next time. */
  signal?: AbortSignal;
  /** Called after each chunk, for progress display. */
  onProgress?: (p: IngestProgress) => void;
  /** Text encoding of sources without a byte order mark (config `inputEncoding`; default utf8). */
  encoding?: InputEncoding;
  /** The platforms the run has an API key for: rows of others are rejected, naming the variable (absent: no check). */
  keys?: KeyPlan;
  /** The clock that decides whether a Google token is past its cut-off (tests). */
  now?: () => number;
  /** Which valid rows to admit now (a canary takes a few; a plan counts them); absent: every row. */
  select?: RowSelector;
  /** what the run accepts of App Store rows: its apps (--bundle-id), sandbox receipts or not (--skip-sandbox) */
  appleRules?: AppleRowRules;
  /**
   * false: App Store tokens are opaque strings (no survey pass, nothing superseded, no conflicts by purchase, no
   * appleRules check): config readAppleReceipts, a bench and diagnosis switch. Default true.
   */
  readAppleTokens?: boolean;
  /**
   * the compiled worker that reads App Store tokens beside the survey pass (surveyThread.ts surveyWorkerFile;
   * config surveyThread); absent: the pass reads them itself
   */
  surveyWorker?: URL;
  /** false: admit (and count) rows without queueing them, and without waiting for the queue (a plan); default true */
  enqueue?: boolean;
  /**
   * Rows given by a transaction id form lookup groups per user (ledger/lookupGroups.ts): default true when
   * queueing. False for a canary: the rows it leaves for later would never come, and the rows it takes would wait for them.
   */
  lookupGroups?: boolean;
}

/**
 * What a selector answers for a valid row read: `take` admits it; `leave` leaves it for a later ingest of the run
 * (the source's progress mark stays before it, so the next ingest reads it again); `wait` admits the rows taken so
 * far first, then offers the row again (a selector counting what was queued must see the admissions); `next-source`
 * leaves it and the rest of its source; `stop` leaves it and ends the ingest.
 */
export type RowChoice = 'take' | 'leave' | 'wait' | 'next-source' | 'stop';

/** Decides which rows an ingest admits now (session/canary.ts: a canary; commands/plan.ts: a plan's counts). */
export interface RowSelector {
  offer(row: ReceiptJobData): RowChoice;
  /** the admissions of the rows taken, once a chunk is admitted (before any of them is queued) */
  admitted?(rows: readonly ReceiptJobData[], admissions: readonly Admission[]): void;
}

/**
 * A chunk is in hand several times at once: its rows, the ledger's call, BullMQ's jobs and their JSON, ioredis's
 * command buffers and the pipeline they are joined into. A thousand rows of 5 KB App Store receipts are 5 MB per
 * copy; chunks of 256 KB took the ingester's peak from 258 to 185 MB on real payloads. But every chunk is admitted
 * in turn (file order decides duplicates), and at 256 KB (about 35 receipts) admitting them one after another was
 * what an ingest of receipts waited on: 1 MB chunks took 50,000 rows from 11.7-12.6 to 10.3-10.5 s, at the same
 * peak (176-182 MB: the survey's and V8's heap growth, heapGrowth.ts, are most of it). Rows of short tokens still
 * go a full chunkSize at a time.
 */
const CHUNK_BYTES = 1024 * 1024;
/**
 * Chunks handed to Redis and not yet marked done. With two, the reader waited on their round trips a third of the
 * time; four leave it reading (bench/README.md, ingestReceipts).
 */
const CHUNKS_IN_FLIGHT = 4;
/** What a row costs a chunk besides its fetch_token: the other cells and the objects around them (a rough figure). */
const ROW_BYTES = 256;
/** What a queued job costs Redis besides its fetch_token (measured: 1.2 KB for a job with a 28-byte Stripe id). */
const JOB_BYTES = 1536;
/** The room a full Redis must have again before a refused ledger write is tried again (redisRoom.ts). */
const WRITE_BYTES = 64 * 1024;

export interface IngestProgress {
  source: string;
  line: number;
  rowsRead: number;
}

export interface IngestResult {
  rowsRead: number;
  /** rows queued for the first time */
  queued: number;
  /** rows this run had already queued without an outcome yet: queued again, which is a no-op if still waiting */
  requeued: number;
  rejected: number;
  duplicates: number;
  /** rows of this run that already had an outcome (a re-ingest after a stop) */
  alreadyDone: number;
  /** rows skipped because an earlier run migrated them */
  alreadyMigrated: number;
  /** rows queued because their payload changed since an earlier run migrated them (counted in `queued` too) */
  updated: number;
  /** rows whose token another user has, in this run or an earlier one */
  conflicts: number;
  /** conflicting rows held back (not sent) */
  held: number;
  /** App Store rows not sent: a newer receipt of the same user carries every purchase they carry */
  superseded: number;
  /** what the survey of the App Store rows counted (plan.json's `receipts`), when the sources were surveyed */
  receipts?: ReceiptCounts;
  /** rows skipped because an interrupted ingest of this run had already queued them */
  resumedRows: number;
  /** rows queued for the first time whose Google token expired more than ~60 days ago (sent anyway; see tokenExpiry.ts) */
  pastCutoff: number;
  aborted: boolean;
  /** the selector left rows for a later ingest (a canary): the ingest of the run is not done */
  partial: boolean;
}

export interface IngestDeps {
  queue: ReceiptsQueue;
  ledger: RunLedger;
  logger: Logger;
  metrics?: PipelineMetrics;
  /** how S3 sources are reached (the S3 client of the configuration) */
  sources?: SourceDeps;
  /** where the run remembers each source it reads, so failed rows can be read again (absent: not remembered) */
  catalog?: Pick<SourceCatalog, 'remember' | 'all'>;
}

/** One step of a chunk in flight, which the next chunk waits for (settled once: later calls do nothing). */
interface Step {
  promise: Promise<void>;
  done: () => void;
  failed: (err: unknown) => void;
}

function step(): Step {
  let done!: () => void;
  let failed!: (err: unknown) => void;
  const promise = new Promise<void>((resolve, reject) => {
    done = resolve;
    failed = reject;
  });
  promise.catch(() => undefined); // surfaced through the chunk's own flush
  return { promise, done, failed };
}

export async function ingest(deps: IngestDeps, opts: IngestOptions): Promise<IngestResult> {
  return new Ingestion(deps, opts).run();
}

/** How reading one source ended: every row read, stopped by the selector, or aborted (SIGINT) between chunks. */
type SourceEnd = 'read' | 'stop' | 'aborted';

/** What the ingest knows of the source it is reading. */
interface SourceState {
  source: string;
  /** what the source is (size and mtime, or ETag), when a catalog is kept */
  identity?: SourceIdentity;
  /** the line up to which an earlier ingest of the run accounted for every row */
  resumeAfter: number;
  /** the line of the last item read */
  line: number;
  plan?: ColumnPlan;
  planError?: string;
  /** the header was seen (planned, and the source remembered) */
  planned: boolean;
}

/**
 * One ingest, in the steps it takes: expand the sources into entries → read each entry's items → plan its columns
 * (and remember the source) → validate each row → offer it to the selector → admit and queue it, a chunk at a time
 * → report progress. Every ledger and queue write goes through `write`: at maxmemory it waits instead of failing.
 */
class Ingestion {
  private readonly result: IngestResult = {
    rowsRead: 0,
    queued: 0,
    requeued: 0,
    rejected: 0,
    duplicates: 0,
    alreadyDone: 0,
    alreadyMigrated: 0,
    updated: 0,
    conflicts: 0,
    held: 0,
    superseded: 0,
    resumedRows: 0,
    pastCutoff: 0,
    aborted: false,
    partial: false,
  };
  private readonly ledger: RunLedger;
  private readonly logger: Logger;
  private readonly memory: MemoryPressure;
  private readonly enqueue: boolean;
  private readonly chunkBytes: number;
  private readonly now: () => number;
  private readonly highWater: Parameters<typeof roomBelowHighWater>[2];
  private pending: ReceiptJobData[] = [];
  private pendingBytes = 0;
  // Superseded rows read since the last hand-off: recorded with the chunk, all at once, before its progress mark
  // (one awaited write per row made an ingest of App Store rows wait on a round trip for each).
  private pendingSuperseded: Superseded[] = [];
  // A chunk's Redis work runs while the next chunks are read and validated: the reader would otherwise sit idle
  // for every round trip. Up to CHUNKS_IN_FLIGHT chunks may be in flight, each in three steps: admission (a chunk
  // is admitted once the one before it is: file order decides which of two rows of one token is the duplicate),
  // queueing (after its own admission; with a high-water mark, also after the chunk before it is queued, so that
  // the room counted holds) and the progress mark (after both, and after the chunk before it is marked: a mark
  // never passes a row not yet queued). Each step waited for a round trip stuck behind the other chunks' jobs on
  // the one Redis connection; with two chunks in flight and queueing in turn, the reader waited on them a third
  // of the time (bench/README.md, ingestReceipts).
  /** the chunks in flight, oldest first: the reader waits for the oldest before handing off one more */
  private readonly flights: Promise<void>[] = [];
  /** the last chunk handed off, every step of it (and so of every chunk before it) */
  private get inflight(): Promise<void> {
    return this.flights.at(-1) ?? Promise.resolve();
  }
  /** the last chunk's admission, and its queueing */
  private admitted: Promise<void> = Promise.resolve();
  private queued: Promise<void> = Promise.resolve();
  // The first line of the current source a selector left for later: its progress mark stays before it.
  private firstLeft: number | undefined;
  // Once a source has an expiry column, or from the start when the survey met an App Store row with an active
  // subscription, every row queued gets a BullMQ priority (tokenExpiry.ts): Google rows racing their cut-off and
  // App Store rows by their subscription's expiry first, the rest in file order after them. Until then nothing is
  // prioritized.
  private prioritize = false;
  /** The first pass's decisions over the run's App Store rows (surveyPass.ts), when its sources may hold any. */
  private survey: SurveyDecisions | undefined;
  /** Rows read whose App Store purchase another user's row of the run holds (the survey's conflicts), until admitted. */
  private readonly claims = new WeakMap<ReceiptJobData, PurchaseClaim>();
  /** Rows read and their App Store purchases, looked up at admission in the cross-run purchase index. */
  private readonly purchases = new WeakMap<ReceiptJobData, PurchaseIdentity[]>();
  /**
   * Rows read and their token fingerprint (`fp` in bytes), so admission does not hash the token again; and whether
   * the survey found the token plain (TokenFacts.plainToken), so admission hashes its payload without checking it.
   */
  private readonly identities = new WeakMap<ReceiptJobData, { key: Buffer } & Pick<AdmitRow, 'plainToken'>>();
  /** Where Redis's memory use is read (the queue's connection), when a write is refused at maxmemory. */
  private readonly info = () => this.deps.queue.getBackend().client;
  /**
   * Rows given by a transaction id form lookup groups per user (ledger/lookupGroups.ts) only when every row read
   * is queued or accounted for: not for a plan (nothing queued) nor a canary (IngestOptions.lookupGroups); those
   * rows are posted each on its own.
   */
  private readonly lookupGroups: boolean;

  constructor(
    private readonly deps: IngestDeps,
    private readonly opts: IngestOptions,
  ) {
    this.ledger = deps.ledger;
    this.logger = deps.logger;
    this.enqueue = opts.enqueue ?? true;
    this.chunkBytes = opts.chunkBytes ?? CHUNK_BYTES;
    this.now = opts.now ?? Date.now;
    this.lookupGroups = this.enqueue && (opts.lookupGroups ?? true);
    // The reader and the chunk in flight share one MemoryPressure, so a full Redis warns once, not once per caller.
    this.memory = new MemoryPressure({
      logger: this.logger,
      role: 'ingest',
      advice: 'free memory, raise maxmemory, or lower --high-water-mark (rows queued but not yet sent take the most room)',
      redis: this.info,
    });
    this.highWater = {
      highWaterMark: opts.highWaterMark,
      ...(opts.signal ? { signal: opts.signal } : {}),
      onPause: (waiting: number) => this.logger.info({ waiting, highWaterMark: opts.highWaterMark }, 'queue above its high-water mark: reading paused until workers catch up'),
      ...(this.lookupGroups ? { exclude: () => this.ledger.lookupGroups.waiting() } : {}),
    };
  }

  /**
   * Once refused, a write is tried again only when Redis has room for its `bytes` (redisRoom.ts): no trickle. One
   * cut off by a lost connection (a Redis restart) is tried again once the connection is back (connectionLoss.ts):
   * every ingest write is safe to repeat (admit answers a row it has seen without counting it again; a second
   * enqueue first asks the ledger again, as after a refusal).
   */
  private write<T>(op: () => Promise<T>, bytes = WRITE_BYTES): Promise<T> {
    const signal = this.opts.signal ? { signal: this.opts.signal } : {};
    let tried = false;
    return retryThroughOutage(
      () =>
        this.memory.retry(async () => {
          if (tried) await waitForRedisRoom(this.info, bytes, signal);
          tried = true;
          return op();
        }, signal),
      {
        ...signal,
        onAbort: () => {
          if (this.outageLogged) return;
          this.outageLogged = true;
          this.logger.warn('Redis connection lost mid-write: the write is tried again once it is back');
        },
      },
    );
  }
  private outageLogged = false;

  async run(): Promise<IngestResult> {
    const { opts, ledger, result } = this;
    // Local paths are numbered up front, as before; S3 objects are numbered as they are reached (an S3 URL itself is
    // never a place: its objects are).
    await this.write(() => ledger.beginIngest(opts.sources.filter((s) => !isS3Url(s))));
    // the workers hold or send a looked-up row's conflict by this ingest's rule (workers/lookupConflicts.ts)
    await this.write(() => ledger.setOnConflict(opts.onConflict ?? 'hold'));
    if (opts.readAppleTokens !== false && mayHoldAppleRows(opts.columns)) {
      this.survey = await surveyPass(this.entries(), {
        columns: opts.columns,
        check: this.checkOptions(),
        rules: opts.appleRules ?? {},
        ...(opts.surveyWorker ? { worker: opts.surveyWorker } : {}),
        sourceNumber: (source) => this.write(() => ledger.sourceId(source)),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      if (!this.survey) {
        result.aborted = true;
        return result;
      }
      const { counts } = this.survey.result;
      result.receipts = counts;
      await this.write(() => ledger.noteReceipts(counts));
      this.logger.info({ read: counts.read, unread: counts.unread, sandbox: counts.sandbox, superseded: counts.superseded }, 'App Store receipts surveyed');
      const bundles = Object.keys(counts.bundles);
      // receipts of several apps in one export are most often a mistake (another app's rows): said once, before sending
      if (bundles.length > 1 && (opts.appleRules?.bundleIds ?? []).length === 0)
        this.logger.warn({ bundles: counts.bundles }, `App Store receipts of ${bundles.length} apps: ${bundles.join(', ')}`);
      // Known before the first row is queued, so no row goes ahead of the order at priority 0 (tokenExpiry.ts).
      if (this.survey.activeRows > 0) {
        this.prioritize = true;
        this.logger.info({ rows: this.survey.activeRows }, 'App Store rows with an active subscription are sent in order of its expiry');
      }
    }
    for await (const entry of this.entries()) {
      const end = await this.readSource(entry);
      if (end === 'aborted') {
        result.aborted = true;
        return result;
      }
      if (end === 'stop') return result;
    }
    // An ingest that left rows for later is not the run's whole ingest: the run stays open for the next one.
    if (!result.partial) await this.write(() => ledger.endIngest());
    return result;
  }

  /** Step 1: the sources given → their entries (a local file, or each CSV object under an S3 prefix), in order. */
  private async *entries(): AsyncGenerator<SourceEntry, void, undefined> {
    const read = this.opts.encoding === undefined ? {} : { encoding: this.opts.encoding };
    for (const given of this.opts.sources) yield* expandSource(given, this.deps.sources, read);
  }

  /** Step 2: reads one entry's items; its name is the place of its rows. */
  private async readSource(entry: SourceEntry): Promise<SourceEnd> {
    const { ledger, logger, result } = this;
    const source = entry.name;
    await this.write(() => ledger.sourceId(source));
    const identity = await this.identify(entry);
    // A restarted ingest (after a kill or Ctrl-C) skips what an earlier one already queued: the ledger
    // records the line up to which every row of this source is accounted for, after each chunk.
    const resumeAfter = await this.write(() => ledger.progress(source));
    if (resumeAfter > 0) logger.info({ source, line: resumeAfter }, 'resuming after the last line ingested');
    const state: SourceState = { source, resumeAfter, line: 0, planned: false, ...(identity ? { identity } : {}) };
    this.firstLeft = undefined;
    let stop = false;
    for await (const read of entry.open()) {
      const item = asRead(read);
      state.line = item.line;
      if (item.line <= resumeAfter) {
        result.resumedRows++;
        continue;
      }
      result.rowsRead++;
      const row = await this.validate(item, state);
      if (row === undefined) continue;
      const choice = await this.offer(row, source, item.line);
      if (choice !== 'take') {
        this.firstLeft ??= item.line;
        result.partial = true;
        if (choice === 'leave') continue;
        stop = choice === 'stop';
        break;
      }
      if (this.add(row)) {
        await this.handOff(source, state.line);
        this.progress(source, state.line);
        if (this.opts.signal?.aborted) {
          await this.inflight;
          return 'aborted';
        }
      }
    }
    await this.handOff(source, Math.max(state.line, resumeAfter));
    await this.inflight;
    this.progress(source, state.line);
    if (this.firstLeft === undefined) logger.info({ source, lines: state.line }, 'source read');
    else logger.info({ source, line: this.firstLeft }, 'source read in part: the rows from this line on are left for the next ingest');
    return stop ? 'stop' : 'read';
  }

  /** What the entry is now, for the run's catalog; undefined without a catalog, or when it cannot be told (opening it will say why). */
  private async identify(entry: SourceEntry): Promise<SourceIdentity | undefined> {
    if (!this.deps.catalog) return undefined;
    try {
      return await entry.identify();
    } catch (err) {
      this.logger.warn(
        { source: entry.name, err: err instanceof Error ? err.message : String(err) },
        'cannot tell what this source is: its failed rows cannot be read again for failed.csv or retry',
      );
      return undefined;
    }
  }

  /**
   * Step 3: the source's column plan, made from the first record's header (the same for every record), and the
   * source remembered in the run's catalog with it.
   */
  private async planColumns(record: CsvRecord, state: SourceState): Promise<ColumnPlan | undefined> {
    if (state.planned) return state.plan;
    state.planned = true;
    const { source } = state;
    await this.remember(record, state);
    const planned = planColumns(record.columns, this.opts.columns);
    if ('error' in planned) {
      state.planError = planned.error;
      this.logger.error({ source }, `cannot use ${source}: ${planned.error}`);
      return undefined;
    }
    const plan = planned.plan;
    state.plan = plan;
    const ignored = plan.ignored.filter((c) => !isExpectationColumn(c));
    if (ignored.length > 0) this.logger.warn({ source, ignored }, 'columns kept in reports but not sent');
    if (plan.expiry !== undefined && !this.prioritize) {
      this.prioritize = true;
      this.logger.info({ source, column: plan.expiry }, 'Google rows are sent in order of their token cut-off (expiry + 60 days)');
    }
    return plan;
  }

  /** The source's identity and read options, kept once per run (ingest/sourceRecord.ts): failed rows are read again from it. */
  private async remember(record: CsvRecord, state: SourceState): Promise<void> {
    const { catalog } = this.deps;
    if (!catalog || !state.identity) return;
    const { source, identity } = state;
    const text = encodeSourceRecord({
      v: 1,
      identity,
      read: { columns: this.opts.columns, ...(this.opts.encoding !== undefined ? { encoding: this.opts.encoding } : {}) },
      header: record.columns,
    });
    const kept = decodeSourceRecord(await this.write(() => catalog.remember(source, text)));
    const change = kept ? identityChange(kept.identity, identity) : undefined;
    if (change !== undefined) {
      this.logger.warn({ source }, `${source} changed since this run first read it (${change}): failed rows read before cannot be read again for failed.csv or retry`);
    }
  }

  /** Step 4: the row a read item is, or its rejection (recorded) and undefined. */
  private async validate(item: CsvItem, state: SourceState): Promise<ReceiptJobData | undefined> {
    const { source } = state;
    if (item.kind === 'problem') {
      await this.reject(source, item.line, item.reason);
      return undefined;
    }
    const plan = await this.planColumns(item, state);
    if (!plan) {
      // A file whose header cannot be used still accounts for every row, each with the file's reason.
      await this.reject(source, item.line, state.planError ?? 'unusable header', item.values);
      return undefined;
    }
    const { opts } = this;
    const checked = checkRow(item.values, plan, this.checkOptions());
    if (!checked.ok) {
      await this.reject(source, item.line, checked.reason, item.values);
      return undefined;
    }
    const { platform, body, input, expect, token_expiry, lookup } = checked.row;
    const apple = this.survey !== undefined && isApplePlatform(platform) && !lookup;
    // what the rules, the order and the purchase index need of the token: kept by the survey pass, which read it
    const facts = apple ? this.tokenFacts(source, item.line, body.fetch_token) : undefined;
    if (facts?.problem !== undefined) {
      await this.reject(source, item.line, facts.problem, item.values);
      return undefined;
    }
    if (apple && this.superseded(source, item.line, body.app_user_id)) return undefined;
    const key = facts?.key ?? tokenFingerprint(platform, body.fetch_token);
    const row: ReceiptJobData = {
      run: opts.runId,
      fp: keyText(key),
      src: source,
      line: item.line,
      platform,
      body,
      input,
      ...(expect ? { expect } : {}),
      ...(token_expiry ? { token_expiry } : {}),
      ...(this.prioritize ? { priority: this.priorityOf(token_expiry, facts) } : {}),
      ...(lookup ? { lookup } : {}),
    };
    this.identities.set(row, facts?.plainToken ? { key, plainToken: true } : { key });
    const claim = apple ? this.survey?.conflictAt(source, item.line) : undefined;
    if (claim) this.claims.set(row, claim);
    else if (facts && facts.purchases.length > 0) this.purchases.set(row, facts.purchases);
    return row;
  }

  /**
   * An App Store token's facts: as the survey pass kept them, or read now when it kept none (a row it did not read,
   * or a source that changed since).
   */
  private tokenFacts(source: string, line: number, token: string): TokenFacts {
    const kept = this.survey?.factsAt(source, line, token);
    if (kept) return kept;
    const reading = readAppleToken(token);
    return factsOf(reading, this.opts.appleRules ? appleRowProblem(reading, this.opts.appleRules) : undefined);
  }

  /** A row's place in a run ordered by expiry: a Google token's cut-off, an App Store token's active subscription. */
  private priorityOf(expiry: TokenExpiry | undefined, facts: TokenFacts | undefined): number {
    const active = facts?.soonestActive(this.now());
    return active !== undefined ? expiryPriority(active) : rowPriority(expiry);
  }

  private checkOptions(): Parameters<typeof checkRow>[2] {
    const { opts } = this;
    return {
      ...(opts.columns.platform !== undefined ? { platform: opts.columns.platform } : {}),
      ...(opts.keys ? { keys: opts.keys } : {}),
      now: this.now,
    };
  }

  /**
   * True when the survey says a newer receipt carries the row: it is not admitted nor sent, and is recorded as
   * superseded with the chunk it was read in (recordSuperseded).
   */
  private superseded(source: string, line: number, appUserId: string): boolean {
    const survey = this.survey;
    if (!survey) return false;
    const decision = survey.decisionFor(source, line);
    if (decision.kind !== 'superseded') return false;
    const by = { src: survey.sourceName(decision.by.source), line: decision.by.line };
    this.pendingSuperseded.push({ src: source, line, app_user_id: appUserId, by });
    return true;
  }

  /** Records superseded rows, together (each once per place: a row recorded before is not counted again). */
  private async recordSuperseded(rows: readonly Superseded[]): Promise<void> {
    if (rows.length === 0) return;
    this.result.superseded += await this.write(() => this.ledger.supersede(rows));
  }

  private async reject(source: string, line: number, reason: string, input?: Record<string, string>): Promise<void> {
    if (await this.write(() => this.ledger.reject({ src: source, line, reason, ...(input ? { input } : {}) }))) {
      this.result.rejected++;
      this.deps.metrics?.row('rejected');
    }
  }

  /** Step 5: what the selector makes of a valid row (`wait`: the rows taken so far are admitted first, then it is asked again). */
  private async offer(row: ReceiptJobData, source: string, line: number): Promise<RowChoice> {
    const { select } = this.opts;
    if (!select) return 'take';
    let choice = select.offer(row);
    while (choice === 'wait') {
      await this.handOff(source, line - 1);
      await this.inflight;
      choice = select.offer(row);
    }
    return choice;
  }

  /** Adds a row to the chunk being read; true when the chunk is full. */
  private add(row: ReceiptJobData): boolean {
    this.pending.push(row);
    this.pendingBytes += row.body.fetch_token.length + ROW_BYTES;
    return this.pending.length >= this.opts.chunkSize || this.pendingBytes >= this.chunkBytes;
  }

  /** Hands the chunk read to Redis (once fewer than CHUNKS_IN_FLIGHT are), its source done up to `line` (or before a row left for later). */
  private async handOff(source: string, line: number): Promise<void> {
    while (this.flights.length >= CHUNKS_IN_FLIGHT) await this.flights.shift();
    const rows = this.pending;
    const superseded = this.pendingSuperseded;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingSuperseded = [];
    const before = { done: this.inflight, admitted: this.admitted, queued: this.queued };
    const admitted = step();
    const queued = step();
    this.admitted = admitted.promise;
    this.queued = queued.promise;
    const flight = this.flush(rows, superseded, source, this.firstLeft === undefined ? line : Math.min(line, this.firstLeft - 1), before, { admitted, queued });
    flight.catch(() => undefined); // surfaced by the next await
    this.flights.push(flight);
  }

  /**
   * Step 6: admits and queues one chunk, in parts that fit under the high-water mark, and records the superseded
   * rows read with it; then records that its source is done up to `line`. `before`: the steps of the chunk handed
   * off before it; `steps`: settled as this chunk's admission and queueing end (a failure rejects them, so the
   * next chunk admits and queues nothing).
   */
  private async flush(
    rows: ReceiptJobData[],
    superseded: readonly Superseded[],
    source: string,
    line: number,
    before: { done: Promise<void>; admitted: Promise<void>; queued: Promise<void> },
    steps: { admitted: Step; queued: Step },
  ): Promise<void> {
    const recorded = this.recordSuperseded(superseded);
    recorded.catch(() => undefined); // surfaced below, once the chunk is admitted
    try {
      await before.admitted;
      // With a mark, the room is counted once the chunk before is queued: the mark holds exactly.
      const marked = this.enqueue && this.opts.highWaterMark > 0;
      if (marked) await before.queued;
      let at = 0;
      while (at < rows.length) {
        // Wait before admitting, so that a paused ingest has admitted no more than it has queued.
        const room = this.enqueue ? await roomBelowHighWater(this.deps.queue, rows.length - at, this.highWater) : rows.length - at;
        const part = at === 0 && room >= rows.length ? rows : rows.slice(at, at + room);
        at += part.length;
        const toQueue = await this.admit(part);
        if (at < rows.length) await this.queue(toQueue);
        else {
          steps.admitted.done();
          if (marked) await before.queued;
          await this.queue(toQueue);
        }
      }
      steps.admitted.done();
      steps.queued.done();
    } catch (err) {
      steps.admitted.failed(err);
      steps.queued.failed(err);
      throw err;
    }
    await recorded;
    // this chunk's mark after the one before it: a mark never passes a row not yet queued
    await before.done;
    await this.write(() => this.ledger.setProgress(source, line));
  }

  private admitOptions(): { force: boolean; onConflict?: 'hold' | 'send' } {
    return { force: this.opts.force ?? false, ...(this.opts.onConflict ? { onConflict: this.opts.onConflict } : {}) };
  }

  /** Queues the rows of one admission (what `admit` answered), their lookup groups marked first. */
  private async queue(rows: { toQueue: ReceiptJobData[]; absent: ReceiptJobData[] }): Promise<void> {
    await this.markLookupGroups(rows.toQueue, rows.absent);
    if (this.enqueue) await this.enqueueAtMaxmemory(rows.toQueue);
  }

  /** Admits rows (in file order): the rows to queue, and the rows of lookup groups that will not be queued. */
  private async admit(rows: ReceiptJobData[]): Promise<{ toQueue: ReceiptJobData[]; absent: ReceiptJobData[] }> {
    const { result, ledger } = this;
    const metrics = this.deps.metrics;
    const admitting = rows.map((row) => {
      const identity = this.identities.get(row);
      const keyed = identity ? { ...row, ...identity } : row;
      const purchase = this.claims.get(row);
      if (purchase) return { ...keyed, purchase };
      const purchases = this.purchases.get(row);
      return purchases ? { ...keyed, purchases } : keyed;
    });
    const admissions = await this.write(() => ledger.admit(admitting, this.admitOptions()));
    this.opts.select?.admitted?.(rows, admissions);
    const toQueue: ReceiptJobData[] = [];
    // rows of lookup groups not queued: their groups must not wait for them
    const absent: ReceiptJobData[] = [];
    for (const [i, admission] of admissions.entries()) {
      const row = rows[i] as ReceiptJobData;
      switch (admission.kind) {
        case 'new':
        case 'updated':
          result.queued++;
          if (admission.kind === 'updated') result.updated++;
          if (row.token_expiry?.past_cutoff === true) result.pastCutoff++;
          // the ledger's key of the row is its job id
          toQueue.push(this.grouped({ ...row, fp: admission.fp }));
          break;
        case 'requeue':
          result.requeued++;
          // Its job id makes this a no-op while the first job is queued; but that job may be answered and removed
          // between the admit and this add, and the new job then checks the ledger before sending.
          toQueue.push(this.grouped({ ...row, fp: admission.fp, recheck: true }));
          break;
        case 'conflict':
          result.conflicts++;
          if (admission.held) {
            result.held++;
            metrics?.row('held');
            absent.push(row);
          } else {
            result.queued++;
            toQueue.push(this.grouped({ ...row, fp: admission.fp }));
          }
          break;
        case 'done':
          result.alreadyDone++;
          // a row of an earlier ingest of the run: held, skipped, or finished (a canary's rows were posted alone)
          absent.push(row);
          break;
        case 'migrated':
          result.alreadyMigrated++;
          metrics?.row('already_migrated');
          absent.push(row);
          break;
        case 'duplicate':
          if (await this.write(() => ledger.duplicate({ src: row.src, line: row.line, first: admission.first, fp: row.fp }))) {
            result.duplicates++;
            metrics?.row('duplicate');
          }
          break;
      }
    }
    return { toQueue, absent };
  }

  /** The size of the lookup group of a row given by a transaction id, when its user has one (surveyPass.ts). */
  private groupSize(row: ReceiptJobData): number | undefined {
    if (!this.lookupGroups || !row.lookup || !this.survey) return undefined;
    return this.survey.lookupGroups.sizeOf(row.body.app_user_id);
  }

  /** A row to queue, with its lookup group's size when it has one: after its lookup it waits for the others. */
  private grouped(row: ReceiptJobData): ReceiptJobData {
    const size = this.groupSize(row);
    return size === undefined || !row.lookup ? row : { ...row, lookup: { ...row.lookup, group: size } };
  }

  /**
   * Before a chunk's rows are queued: each lookup group they belong to exists (with its size), and the rows of
   * groups that are not queued are marked absent. A mark that gives a group its last result wakes its rows waiting.
   */
  private async markLookupGroups(queued: readonly ReceiptJobData[], absent: readonly ReceiptJobData[]): Promise<void> {
    if (!this.lookupGroups) return;
    const groups = this.ledger.lookupGroups;
    const opened = new Set<string>();
    const writes: Promise<unknown>[] = [];
    for (const row of queued) {
      const size = row.lookup?.group;
      const user = row.body.app_user_id;
      if (size === undefined || opened.has(user)) continue;
      opened.add(user);
      writes.push(this.write(() => groups.open(user, size)));
    }
    for (const row of absent) {
      const size = this.groupSize(row);
      if (size === undefined) continue;
      writes.push(
        this.write(() => groups.absent(row.body.app_user_id, size, locationOf(row.src, row.line))).then(async (answer) => {
          if (answer.kind !== 'complete' || !answer.completedNow) return;
          const fps = answer.entries.flatMap((e) => (e.value.kind === 'result' ? [e.value.fp] : []));
          await promoteJobs(
            this.deps.queue,
            fps.map((fp) => jobIdOf(this.opts.runId, fp)),
          );
        }),
      );
    }
    await Promise.all(writes);
  }

  /**
   * Step 7: queues rows. addBulk is a pipeline: at maxmemory some of its jobs may have got in before Redis refused
   * the rest. Re-adding those is a no-op while they wait; but one may have been sent, recorded and removed
   * meanwhile, and adding it again would send it twice. So a retry first asks the ledger again (admit is read-only
   * for rows it has seen) and queues only the rows still without an outcome.
   */
  private async enqueueAtMaxmemory(rows: ReceiptJobData[]): Promise<void> {
    let left = rows;
    let refused = false;
    const bytes = rows.reduce((n, row) => n + row.body.fetch_token.length + JOB_BYTES, 0);
    await this.write(async () => {
      if (refused) {
        const again = await this.ledger.admit(left, this.admitOptions());
        left = left.filter((_, i) => again[i]?.kind !== 'done');
      }
      refused = true;
      await enqueueRows(this.deps.queue, left, this.opts.maxAttempts);
    }, bytes);
  }

  /** Step 8: the line reached, after each chunk and at the end of each source (also rcm_ingest_line, through the session's `ingest` event). */
  private progress(source: string, line: number): void {
    this.opts.onProgress?.({ source, line, rowsRead: this.result.rowsRead });
  }
}
