// The ingester: reads every source, validates each row, and queues the good ones in chunks. Every row read
// ends in the ledger as queued, rejected (with its line and reason) or a duplicate of an earlier line.
// When Redis is at maxmemory every write waits until it is accepted (redis/memoryPressure.ts): reading pauses
// with one warning, and goes on where it stopped once memory is freed.
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics/metrics.js';
import type { Admission, RunLedger } from '../ledger/runLedger.js';
import { roomBelowHighWater } from '../queue/highWater.js';
import { MemoryPressure } from '../redis/memoryPressure.js';
import { enqueueRows, type ReceiptsQueue } from '../queue/receiptsQueue.js';
import type { ReceiptJobData } from '../types.js';
import { planColumns, type ColumnOptions, type ColumnPlan } from './columns.js';
import { isExpectationColumn, readExpectations } from './expectations.js';
import { recordKey } from '../ledger/rowIdentity.js';
import { unescapeFormulas } from '../csv/formulaCells.js';
import { expandSource, isS3Url, type SourceDeps } from './sources.js';
import type { InputEncoding } from './textEncoding.js';
import { readTokenExpiry, rowPriority } from './tokenExpiry.js';
import { validateRow } from './validateRow.js';
import { waitForRedisRoom } from './redisRoom.js';
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
  /** false: admit (and count) rows without queueing them, and without waiting for the queue (a plan); default true */
  enqueue?: boolean;
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
 * copy; chunks of 256 KB took the ingester's peak from 258 to 185 MB on real payloads, at the same rows/s (the
 * round trips per chunk overlap the reading of the next one). Smaller chunks gained nothing more; what is left is
 * V8's heap growth (heapGrowth.ts). Rows of short tokens still go a full chunkSize at a time.
 */
const CHUNK_BYTES = 256 * 1024;
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
}

export async function ingest(deps: IngestDeps, opts: IngestOptions): Promise<IngestResult> {
  const { ledger, logger } = deps;
  const result: IngestResult = {
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
    resumedRows: 0,
    pastCutoff: 0,
    aborted: false,
    partial: false,
  };
  const enqueue = opts.enqueue ?? true;
  const select = opts.select;
  // Local paths are numbered up front, as before; S3 objects are numbered as they are reached (an S3 URL itself is
  // never a place: its objects are).
  // Every ledger and queue write below goes through `write`: at maxmemory it waits instead of failing the ingest.
  // The reader and the chunk in flight share one MemoryPressure, so a full Redis warns once, not once per caller.
  const info = () => deps.queue.getBackend().client;
  const memory = new MemoryPressure({
    logger,
    role: 'ingest',
    advice: 'free memory, raise maxmemory, or lower --high-water-mark (rows queued but not yet sent take the most room)',
    redis: info,
  });
  const signal = opts.signal ? { signal: opts.signal } : {};
  /** Once refused, a write is tried again only when Redis has room for its `bytes` (redisRoom.ts): no trickle. */
  const write = <T>(op: () => Promise<T>, bytes = WRITE_BYTES): Promise<T> => {
    let tried = false;
    return memory.retry(async () => {
      if (tried) await waitForRedisRoom(info, bytes, signal);
      tried = true;
      return op();
    }, signal);
  };
  await write(() => ledger.beginIngest(opts.sources.filter((s) => !isS3Url(s))));
  let pending: ReceiptJobData[] = [];
  let pendingBytes = 0;
  const chunkBytes = opts.chunkBytes ?? CHUNK_BYTES;
  const { metrics } = deps;
  const reject = async (source: string, line: number, reason: string, input?: Record<string, string>): Promise<void> => {
    if (await write(() => ledger.reject({ src: source, line, reason, ...(input ? { input } : {}) }))) {
      result.rejected++;
      metrics?.row('rejected');
    }
  };
  // The line reached also feeds the metrics' rcm_ingest_line, through the session's `ingest` event.
  const progress = (source: string, line: number): void => {
    opts.onProgress?.({ source, line, rowsRead: result.rowsRead });
  };

  const highWater = {
    highWaterMark: opts.highWaterMark,
    ...(opts.signal ? { signal: opts.signal } : {}),
    onPause: (waiting: number) => logger.info({ waiting, highWaterMark: opts.highWaterMark }, 'queue above its high-water mark: reading paused until workers catch up'),
  };
  /** Admits and queues one chunk, in parts that fit under the high-water mark, then records that its source is done up to `line`. */
  const flush = async (rows: ReceiptJobData[], source: string, line: number): Promise<void> => {
    let at = 0;
    while (at < rows.length) {
      // Wait before admitting, so that a paused ingest has admitted no more than it has queued.
      const room = enqueue ? await roomBelowHighWater(deps.queue, rows.length - at, highWater) : rows.length - at;
      const part = at === 0 && room >= rows.length ? rows : rows.slice(at, at + room);
      at += part.length;
      await admitAndQueue(part);
    }
    await write(() => ledger.setProgress(source, line));
  };
  /** Admits rows (in file order) and queues those that are to be sent. */
  const admitAndQueue = async (rows: ReceiptJobData[]): Promise<void> => {
    const admitOptions = { force: opts.force ?? false, ...(opts.onConflict ? { onConflict: opts.onConflict } : {}) };
    const admissions = await write(() => ledger.admit(rows, admitOptions));
    select?.admitted?.(rows, admissions);
    const toQueue: ReceiptJobData[] = [];
    for (const [i, admission] of admissions.entries()) {
      const row = rows[i] as ReceiptJobData;
      switch (admission.kind) {
        case 'new':
        case 'updated':
          result.queued++;
          if (admission.kind === 'updated') result.updated++;
          if (row.token_expiry?.past_cutoff === true) result.pastCutoff++;
          // the ledger's key of the row is its job id
          toQueue.push({ ...row, fp: admission.fp });
          break;
        case 'requeue':
          result.requeued++;
          toQueue.push({ ...row, fp: admission.fp });
          break;
        case 'conflict':
          result.conflicts++;
          if (admission.held) {
            result.held++;
            metrics?.row('held');
          } else {
            result.queued++;
            toQueue.push({ ...row, fp: admission.fp });
          }
          break;
        case 'done':
          result.alreadyDone++;
          break;
        case 'migrated':
          result.alreadyMigrated++;
          metrics?.row('already_migrated');
          break;
        case 'duplicate':
          if (await write(() => ledger.duplicate({ src: row.src, line: row.line, first: admission.first, fp: row.fp }))) {
            result.duplicates++;
            metrics?.row('duplicate');
          }
          break;
      }
    }
    if (enqueue) await enqueueAtMaxmemory(toQueue);
  };
  /**
   * addBulk is a pipeline: at maxmemory some of its jobs may have got in before Redis refused the rest. Re-adding
   * those is a no-op while they wait; but one may have been sent, recorded and removed meanwhile, and adding it
   * again would send it twice. So a retry first asks the ledger again (admit is read-only for rows it has seen)
   * and queues only the rows still without an outcome.
   */
  const enqueueAtMaxmemory = async (rows: ReceiptJobData[]): Promise<void> => {
    let left = rows;
    let refused = false;
    const bytes = rows.reduce((n, row) => n + row.body.fetch_token.length + JOB_BYTES, 0);
    await write(async () => {
      if (refused) {
        const again = await ledger.admit(left, { force: opts.force ?? false, ...(opts.onConflict ? { onConflict: opts.onConflict } : {}) });
        left = left.filter((_, i) => again[i]?.kind !== 'done');
      }
      refused = true;
      await enqueueRows(deps.queue, left, opts.maxAttempts);
    }, bytes);
  };
  // One chunk's Redis work runs while the next chunk is read and validated: the reader would otherwise sit
  // idle for every round trip. At most one chunk is in flight, so admission stays in file order.
  let inflight: Promise<void> = Promise.resolve();
  // The first line of the current source a selector left for later: its progress mark stays before it.
  let firstLeft: number | undefined;
  const handOff = async (source: string, line: number): Promise<void> => {
    await inflight;
    const rows = pending;
    pending = [];
    pendingBytes = 0;
    inflight = flush(rows, source, firstLeft === undefined ? line : Math.min(line, firstLeft - 1));
    inflight.catch(() => undefined); // surfaced by the next await
  };

  // Once a source has an expiry column, every row queued after it gets a BullMQ priority (tokenExpiry.ts): Google
  // rows racing their cut-off first, the rest in file order after them. Until then nothing is prioritized.
  let prioritize = false;
  const now = opts.now ?? Date.now;
  for (const given of opts.sources) {
    for await (const entry of expandSource(given, deps.sources, opts.encoding === undefined ? {} : { encoding: opts.encoding })) {
      // One entry per input: a local file, or one object of an S3 prefix. Its name is the place of its rows.
      const source = entry.name;
      await write(() => ledger.sourceId(source));
      let plan: ColumnPlan | undefined;
      let planError: string | undefined;
      let line = 0;
      // A restarted ingest (after a kill or Ctrl-C) skips what an earlier one already queued: the ledger
      // records the line up to which every row of this source is accounted for, after each chunk.
      const resumeAfter = await write(() => ledger.progress(source));
      if (resumeAfter > 0) logger.info({ source, line: resumeAfter }, 'resuming after the last line ingested');
      firstLeft = undefined;
      let stop = false;
      rows: for await (const read of entry.open()) {
        // Reports write formula-like cells with a leading apostrophe; a report read back gets its values again.
        const item = read.kind === 'record' ? { ...read, values: unescapeFormulas(read.values) } : read;
        line = item.line;
        if (item.line <= resumeAfter) {
          result.resumedRows++;
          continue;
        }
        result.rowsRead++;
        if (item.kind === 'problem') {
          await reject(source, item.line, item.reason);
          continue;
        }
        if (!plan && !planError) {
          const planned = planColumns(item.columns, opts.columns);
          if ('error' in planned) {
            planError = planned.error;
            logger.error({ source }, `cannot use ${source}: ${planError}`);
          } else {
            plan = planned.plan;
            const ignored = plan.ignored.filter((c) => !isExpectationColumn(c));
            if (ignored.length > 0) logger.warn({ source, ignored }, 'columns kept in reports but not sent');
            if (plan.expiry !== undefined && !prioritize) {
              prioritize = true;
              logger.info({ source, column: plan.expiry }, 'Google rows are sent in order of their token cut-off (expiry + 60 days)');
            }
          }
        }
        if (!plan) {
          // A file whose header cannot be used still accounts for every row, each with the file's reason.
          await reject(source, item.line, planError ?? 'unusable header', item.values);
          continue;
        }
        const checked = validateRow(item.values, plan, { platform: opts.columns.platform, ...(opts.keys ? { keys: opts.keys } : {}) });
        if (!checked.ok) {
          await reject(source, item.line, checked.reason, item.values);
          continue;
        }
        const expected = readExpectations(item.values);
        if (!expected.ok) {
          await reject(source, item.line, expected.reason, item.values);
          continue;
        }
        const expiry = readTokenExpiry(item.values, plan, checked.platform, now());
        if (!expiry.ok) {
          await reject(source, item.line, expiry.reason, item.values);
          continue;
        }
        const row: ReceiptJobData = {
          run: opts.runId,
          fp: recordKey(checked.platform, checked.body.fetch_token),
          src: source,
          line: item.line,
          platform: checked.platform,
          body: checked.body,
          input: item.values,
          ...(expected.expect ? { expect: expected.expect } : {}),
          ...(expiry.expiry ? { token_expiry: expiry.expiry } : {}),
          ...(prioritize ? { priority: rowPriority(expiry.expiry) } : {}),
        };
        let choice = select ? select.offer(row) : 'take';
        while (choice === 'wait') {
          await handOff(source, item.line - 1);
          await inflight;
          choice = select ? select.offer(row) : 'take';
        }
        if (choice !== 'take') {
          firstLeft ??= item.line;
          result.partial = true;
          if (choice === 'leave') continue;
          stop = choice === 'stop';
          break rows;
        }
        pending.push(row);
        pendingBytes += row.body.fetch_token.length + ROW_BYTES;
        if (pending.length >= opts.chunkSize || pendingBytes >= chunkBytes) {
          await handOff(source, line);
          progress(source, line);
          if (opts.signal?.aborted) {
            await inflight;
            result.aborted = true;
            return result;
          }
        }
      }
      await handOff(source, Math.max(line, resumeAfter));
      await inflight;
      progress(source, line);
      if (firstLeft === undefined) logger.info({ source, lines: line }, 'source read');
      else logger.info({ source, line: firstLeft }, 'source read in part: the rows from this line on are left for the next ingest');
      if (stop) return result;
    }
  }
  // An ingest that left rows for later is not the run's whole ingest: the run stays open for the next one.
  if (!result.partial) await write(() => ledger.endIngest());
  return result;
}
