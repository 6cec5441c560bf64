// The run ledger: everything Redis knows about one run (counters, which rows were seen, every outcome,
// rejection, duplicate and conflict), and the cross-run index of migrated tokens that later runs consult.
//
// Layout (src/redis/keys.ts): a run's own keys (meta, sources, dictionary, verify results) under one hash tag;
// its rows, their counters and the cross-run index spread over SHARDS hash tags by the first byte of each row's
// token fingerprint (ledger/rowIdentity.ts). Within a shard, rows live in a table of small buckets that Redis
// keeps as listpacks (src/redis/scripts/includes/table.lua), one compact record per row (ledger/rowRecord.ts),
// with no key per row. Every multi-key update is a Lua script on the keys of one shard (one slot on a Redis
// Cluster), so counters never drift from the records they count, even when a worker is killed between two
// writes or a row is answered twice; readers sum the shards. On a cluster, writes that a write on another master
// will depend on (an admission before its job, an answer before its job completes, a number that records refer
// to) return only once a replica has them (redis/replication.ts), so that a failover cannot lose one and keep the other.
import type { Platform, ReceiptBody } from '../revenuecat/fields.js';
import type { Duplicate, Outcome, Rejection, RunCounters, RunState } from '../types.js';
import type { StateMismatch } from '../state/mismatch.js';
import type { RedisClient } from '../redis/connection.js';
import { INGEST_STATE, latencyField, locationOf, META, parseTimelineField, RedisKeys, SHARDS, TIMELINE, timelineField, type RunKeys, type RunShardKeys } from '../redis/keys.js';
import { callScript, callScriptBuffer, loadScripts } from '../redis/scripts.js';
import { durable } from '../redis/replication.js';
import { payloadHash, SHORT_HASH_BYTES, TOKEN_FINGERPRINT_BYTES, tokenFingerprint, userHash } from './rowIdentity.js';
import {
  decodeConflict,
  decodeHead,
  decodeHistoryEntry,
  decodePlace,
  decodeSuccess,
  dictionaryStrings,
  encodePlace,
  encodeSuccess,
  encodeUser,
  headRecord,
  indexValue,
  keyBytes,
  keyText,
  packFailure,
  RECORD,
  shardOfKey,
  unpackFailure,
  type DecodeContext,
} from './rowRecord.js';
import { hashEntries, tableRecords } from './rowTable.js';
import { LATENCY_BUCKETS_MS, latencyBucket, timelineBucket, type TimelinePoint } from './timeline.js';

/** What the last `verify` pass found, as the run's summary shows it. */
export interface VerifySummary {
  at: string;
  api: 'v2' | 'v1';
  checked: number;
  users: number;
  matched: number;
  mismatched: number;
  aborted?: string;
}

/** A failure as the `status` command shows it. */
export interface RecentError {
  at: string;
  src: string;
  line: number;
  reason: string;
  message: string;
}

/**
 * What to do with a row read (admit). `fp` is the row's record key, its job id within the run.
 * - new: queue it; updated: queue it, an earlier run migrated its token for the same user with another payload;
 * - requeue: this very row was admitted before and has no outcome yet (queue again: a no-op if still queued);
 * - done: this very row was admitted before and is finished, skipped or held;
 * - migrated: an earlier run migrated the same token for the same user with the same payload (skipped);
 * - duplicate: same token and user as the row at `first` in this run;
 * - conflict: the token is another user's, in this run or an earlier one; held (not sent), or sent anyway.
 */
export type Admission =
  | { kind: 'new'; fp: string }
  | { kind: 'updated'; fp: string }
  | { kind: 'requeue'; fp: string }
  | { kind: 'done' }
  | { kind: 'migrated' }
  | { kind: 'duplicate'; first: string }
  | { kind: 'conflict'; held: true }
  | { kind: 'conflict'; held: false; fp: string };

/** What admit needs of a row. */
export interface AdmitRow {
  src: string;
  line: number;
  platform: Platform;
  body: ReceiptBody;
}

export interface AdmitOptions {
  /** send rows an earlier run migrated with the same payload */
  force?: boolean;
  /** a row whose token another user has: held back (default) or sent anyway */
  onConflict?: 'hold' | 'send';
}

/** One HTTP request, as the ledger counts it. */
export interface RequestSample {
  /** HTTP status or network error name */
  status: string;
  durationMs: number;
  /** a 429 about the rate limit (not a busy user) */
  rateLimited: boolean;
  at?: number;
}

export interface RecordOptions {
  /** an outcome already there wins (the safety nets) */
  onlyIfAbsent?: boolean;
  /** the request this answer came with, counted in the same call */
  request?: RequestSample;
  /** what was sent: a success enters the cross-run index with its payload hash (without it, as "changed") */
  sent?: { platform: Platform; body: ReceiptBody };
}

/** A conflict: a row whose token another user has, and that other user's row. */
export interface Conflict {
  src: string;
  line: number;
  app_user_id: string;
  /** the row's record key (token fingerprint) */
  fp: string;
  /** held back (not sent), or sent anyway (onConflict 'send') */
  held: boolean;
  /** the other row: of this run, or of the earlier run that migrated the token (as far as that run's ledger still says) */
  other: { run_id?: string; src?: string; line?: number; app_user_id?: string };
}

/** Where a row admitted into a run stands. */
export interface RowState {
  fp: string;
  status: 'queued' | 'skipped' | 'held' | 'succeeded' | 'failed';
  src: string;
  line: number;
  app_user_id: string;
}

const ROW_STATUS: Record<string, RowState['status']> = {
  [RECORD.queued]: 'queued',
  [RECORD.skipped]: 'skipped',
  [RECORD.held]: 'held',
  [RECORD.succeeded]: 'succeeded',
  [RECORD.failed]: 'failed',
};

/** Where each counter of RunState lives in the meta and shard counter hashes. */
const COUNTER_FIELDS: Record<keyof RunCounters, string> = {
  rows_read: META.rowsRead,
  rows_rejected: META.rowsRejected,
  rows_duplicate: META.rowsDuplicate,
  rows_queued: META.rowsQueued,
  rows_succeeded: META.rowsSucceeded,
  rows_failed: META.rowsFailed,
  rows_already_migrated: META.rowsAlreadyMigrated,
  rows_updated: META.rowsUpdated,
  rows_conflict: META.rowsConflict,
  rows_held: META.rowsHeld,
  requests_sent: META.requestsSent,
  retries: META.retries,
};

const ZERO_PAYLOAD = Buffer.alloc(SHORT_HASH_BYTES);
const RECENT_ERRORS = 20;
const SHARD_NUMBERS = Array.from({ length: SHARDS }, (_, s) => s);

export class RunLedger {
  readonly keys: RunKeys;
  private readonly names: RedisKeys;
  private readonly shards: RunShardKeys[];
  // Looked up once per process (concurrent first uses share one lookup; a failed one is tried again next time).
  private readonly sourceIds = new Map<string, Promise<number>>();
  private readonly codes = new Map<string, number>();
  private readonly pendingCodes = new Map<string, Promise<void>>();
  private startMs?: Promise<number>;
  private number?: Promise<number>;

  constructor(
    private readonly redis: RedisClient,
    readonly prefix: string,
    readonly runId: string,
  ) {
    loadScripts(redis);
    this.names = new RedisKeys(prefix);
    this.keys = this.names.run(runId);
    this.shards = SHARD_NUMBERS.map((s) => this.names.runShard(runId, s));
  }

  private shard(s: number): RunShardKeys {
    return this.shards[s] as RunShardKeys;
  }

  /** Creates the run if new (keeps the first start time) and marks an ingest as running. */
  async beginIngest(sources: string[], now = new Date()): Promise<void> {
    const iso = now.toISOString();
    await durable(this.redis, this.keys.meta, async () => {
      const tx = this.redis.multi();
      tx.hsetnx(this.keys.meta, META.startedAt, iso);
      tx.hset(this.keys.meta, META.runId, this.runId, META.ingest, INGEST_STATE.running);
      tx.hdel(this.keys.meta, META.finishedAt);
      await tx.exec();
    });
    await durable(this.redis, this.names.runs, () => this.redis.zadd(this.names.runs, 'NX', now.getTime(), this.runId));
    await this.runNumber();
    for (const source of sources) await this.sourceId(source);
  }

  /** The number that stands for a source in this run's compact records (cached: it never changes). */
  async sourceId(source: string): Promise<number> {
    let id = this.sourceIds.get(source);
    if (id === undefined) {
      id = durable(this.redis, this.keys.sources, () => callScript<number>(this.redis, 'sourceId', [this.keys.sources, this.keys.meta], [source]));
      this.sourceIds.set(source, id);
      id.catch(() => this.sourceIds.delete(source));
    }
    return id;
  }

  /** Source names by number. */
  async sources(): Promise<string[]> {
    const all = await this.redis.hgetall(this.keys.sources);
    const names: string[] = [];
    for (const [name, id] of Object.entries(all)) names[Number(id)] = name;
    return names;
  }

  /** This run's number in the cross-run index (cached: it never changes). */
  async runNumber(): Promise<number> {
    if (!this.number) {
      this.number = durable(this.redis, this.names.runNumbers, () => callScript<number>(this.redis, 'runNumber', [this.names.runNumbers], [this.runId]));
      this.number.catch(() => (this.number = undefined));
    }
    return this.number;
  }

  /** When the run began (epoch ms): records count their times from it (cached). */
  private async start(): Promise<number> {
    if (!this.startMs) {
      this.startMs = (async () => {
        await durable(this.redis, this.keys.meta, () => this.redis.hsetnx(this.keys.meta, META.startedAt, new Date().toISOString()));
        return Date.parse((await this.redis.hget(this.keys.meta, META.startedAt)) as string);
      })();
      this.startMs.catch(() => (this.startMs = undefined));
    }
    return this.startMs;
  }

  /** Dictionary codes of these strings (cached; the first use of a string costs one round trip). */
  private async ensureCodes(strings: string[]): Promise<void> {
    const missing = strings.filter((s) => !this.codes.has(s) && !this.pendingCodes.has(s));
    if (missing.length > 0) {
      const lookup = durable(this.redis, this.keys.dict, () => callScript<number[]>(this.redis, 'dictCode', [this.keys.dict], missing)).then((codes) =>
        missing.forEach((s, i) => this.codes.set(s, codes[i] as number)),
      );
      for (const s of missing) this.pendingCodes.set(s, lookup);
      lookup.then(
        () => missing.forEach((s) => this.pendingCodes.delete(s)),
        () => missing.forEach((s) => this.pendingCodes.delete(s)),
      );
    }
    await Promise.all(strings.map((s) => this.pendingCodes.get(s) ?? Promise.resolve()));
  }

  private code = (text: string): number => {
    const code = this.codes.get(text);
    if (code === undefined) throw new Error(`no dictionary code for ${text}`);
    return code;
  };

  /** What decoding this run's records needs: source names, start and dictionary (read once per pass). */
  private async decodeContext(): Promise<DecodeContext> {
    const [sources, dict, started] = await Promise.all([this.sources(), this.redis.hgetall(this.keys.dict), this.redis.hget(this.keys.meta, META.startedAt)]);
    const names: string[] = [];
    for (const [text, code] of Object.entries(dict)) names[Number(code)] = text;
    return { sources, base: started ? Date.parse(started) : 0, name: (code) => names[code] ?? `#${code}` };
  }

  private async placeName(place: Buffer, sources?: readonly string[]): Promise<string> {
    const { sourceNumber, line } = decodePlace(place);
    const names = sources ?? (await this.sources());
    return locationOf(names[sourceNumber] ?? `source #${sourceNumber}`, line);
  }

  /** Every row of `source` up to `line` is queued or accounted for: a restarted ingest may skip them. */
  async setProgress(source: string, line: number): Promise<void> {
    await this.redis.hset(this.keys.meta, META.progress(await this.sourceId(source)), line);
  }

  /** The line up to which `source` was ingested, 0 when never. */
  async progress(source: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.meta, META.progress(await this.sourceId(source)))) ?? 0);
  }

  async endIngest(): Promise<void> {
    await durable(this.redis, this.keys.meta, () => this.redis.hset(this.keys.meta, META.ingest, INGEST_STATE.done));
  }

  async exists(): Promise<boolean> {
    return (await this.redis.exists(this.keys.meta)) === 1;
  }

  /**
   * Decides what to do with each row read (see Admission), in one script call per shard the rows fall in.
   * Detection is in Redis: within the run by the row table, across runs by the index, so a 10-million-row file
   * needs no memory in the process.
   */
  async admit(rows: AdmitRow[], opts: AdmitOptions = {}): Promise<Admission[]> {
    if (rows.length === 0) return [];
    const byShard = new Map<number, { rows: number[]; args: Buffer[] }>();
    for (const [i, row] of rows.entries()) {
      const key = tokenFingerprint(row.platform, row.body.fetch_token);
      const s = shardOfKey(key);
      let batch = byShard.get(s);
      if (!batch) {
        batch = { rows: [], args: [] };
        byShard.set(s, batch);
      }
      batch.rows.push(i);
      batch.args.push(
        key,
        encodePlace(await this.sourceId(row.src), row.line),
        encodeUser(row.body.app_user_id),
        userHash(row.body.app_user_id),
        payloadHash(row.platform, row.body),
      );
    }
    const admissions: Admission[] = new Array<Admission>(rows.length);
    let sources: string[] | undefined;
    await Promise.all(
      [...byShard].map(async ([s, batch]) => {
        const k = this.shard(s);
        const ix = this.names.index(s);
        // Done again after a failover, it answers 'q'/'d'/'D' for the rows it admitted and counts nothing twice.
        const answers = await durable(this.redis, k.counters, () =>
          callScriptBuffer<Buffer[]>(
            this.redis,
            'admit',
            [k.counters, k.wide, k.conflicts, ix.state],
            [k.buckets, ix.buckets, opts.force ? '1' : '0', opts.onConflict ?? 'hold', ...batch.args],
          ),
        );
        for (const [j, answer] of answers.entries()) {
          const rest = answer.subarray(1);
          const i = batch.rows[j] as number;
          switch (String.fromCharCode(answer[0] as number)) {
            case 'n':
              admissions[i] = { kind: 'new', fp: keyText(rest) };
              break;
            case 'u':
              admissions[i] = { kind: 'updated', fp: keyText(rest) };
              break;
            case 'q':
              admissions[i] = { kind: 'requeue', fp: keyText(rest) };
              break;
            case 'd':
              admissions[i] = { kind: 'done' };
              break;
            case 'm':
              admissions[i] = { kind: 'migrated' };
              break;
            case 'D':
              sources ??= await this.sources();
              admissions[i] = { kind: 'duplicate', first: await this.placeName(rest, sources) };
              break;
            case 'C':
              admissions[i] = { kind: 'conflict', held: true };
              break;
            case 'S':
              admissions[i] = { kind: 'conflict', held: false, fp: keyText(rest) };
              break;
            default:
              throw new Error(`admit: unexpected answer ${answer.toString('latin1')}`);
          }
        }
      }),
    );
    return admissions;
  }

  /** Records a rejected row once per place in the input; returns whether it was new. */
  async reject(rejection: Rejection): Promise<boolean> {
    const k = this.shard(rejection.line % SHARDS);
    const loc = locationOf(rejection.src, rejection.line);
    const once = (): Promise<number> => callScript<number>(this.redis, 'recordOnce', [k.rejected, k.counters], [loc, JSON.stringify(rejection), META.rowsRejected]);
    return (await durable(this.redis, k.counters, once)) === 1;
  }

  async duplicate(dup: Duplicate): Promise<boolean> {
    const k = this.shard(dup.line % SHARDS);
    const loc = locationOf(dup.src, dup.line);
    const once = (): Promise<number> => callScript<number>(this.redis, 'recordOnce', [k.duplicates, k.counters], [loc, JSON.stringify(dup), META.rowsDuplicate]);
    return (await durable(this.redis, k.counters, once)) === 1;
  }

  /** The shard of a row by its record key (fp), or shard 0 for a request without a row. */
  private shardOfFp(fp: string | undefined): RunShardKeys {
    return this.shard(fp ? shardOfKey(keyBytes(fp)) : 0);
  }

  /**
   * Counts one HTTP request that brought no final answer (a retry follows), in one round trip. A final answer's
   * request is counted by recordAnswer in the same call as the answer.
   */
  async countRequest(request: RequestSample & { fp?: string }): Promise<void> {
    const k = this.shardOfFp(request.fp);
    const bucket = timelineBucket(request.at ?? Date.now());
    const p = this.redis
      .pipeline()
      .hincrby(k.counters, META.requestsSent, 1)
      .hincrby(k.counters, META.status(request.status), 1)
      .hincrby(k.timeline, timelineField(bucket, TIMELINE.requests), 1)
      .hincrby(k.latency, latencyField(latencyBucket(request.durationMs)), 1);
    if (request.rateLimited) p.hincrby(k.timeline, timelineField(bucket, TIMELINE.rateLimited), 1);
    await p.exec();
  }

  /**
   * The request rate the workers pace this run's requests at (workers/rateController.ts), for the report's rate
   * over time against its 429s: one value per timeline bucket, the last written (in the first shard only).
   */
  async recordRate(ratePerSecond: number, at = Date.now()): Promise<void> {
    const key = (this.shards[0] as RunShardKeys).timeline;
    await this.redis.hset(key, timelineField(timelineBucket(at), TIMELINE.rate), String(Math.round(ratePerSecond * 100) / 100));
  }

  /** The run's timeline, in buckets of TIMELINE_BUCKET_SECONDS, oldest first (summed over the shards). */
  async timeline(): Promise<TimelinePoint[]> {
    const all = await Promise.all(this.shards.map((k) => this.redis.hgetall(k.timeline)));
    const points = new Map<number, TimelinePoint>();
    for (const raw of all) {
      for (const [field, value] of Object.entries(raw)) {
        const { t, kind } = parseTimelineField(field);
        const point = points.get(t) ?? { t, requests: 0, rateLimited: 0, succeeded: 0, failed: 0 };
        const n = Number(value);
        if (kind === TIMELINE.requests) point.requests += n;
        else if (kind === TIMELINE.rateLimited) point.rateLimited += n;
        else if (kind === TIMELINE.succeeded) point.succeeded += n;
        else if (kind === TIMELINE.failed) point.failed += n;
        else if (kind === TIMELINE.rate) point.rate = Math.max(point.rate ?? 0, n);
        points.set(point.t, point);
      }
    }
    return [...points.values()].sort((a, b) => a.t - b.t);
  }

  /** Request latency histogram: counts per LATENCY_BUCKETS_MS bound, plus the overflow bucket. */
  async latencyBuckets(): Promise<number[]> {
    const all = await Promise.all(this.shards.map((k) => this.redis.hgetall(k.latency)));
    return Array.from({ length: LATENCY_BUCKETS_MS.length + 1 }, (_, i) => all.reduce((sum, raw) => sum + Number(raw[latencyField(i)] ?? 0), 0));
  }

  /**
   * Records a row's final answer, and the request that brought it, in one call (recordAnswer-8.lua). A success
   * keeps its compact record and enters the cross-run index; a failure keeps its whole outcome (failed.csv, retry).
   * Returns false when onlyIfAbsent found a final answer there.
   */
  async recordAnswer(outcome: Outcome, opts: RecordOptions = {}): Promise<boolean> {
    const key = keyBytes(outcome.fp);
    const s = shardOfKey(key);
    const k = this.shard(s);
    const ix = this.names.index(s);
    const sourceNumber = await this.sourceId(outcome.src);
    const user = encodeUser(outcome.app_user_id);
    let record: Buffer;
    let failure: Buffer | string = '';
    let error = '';
    let index: Buffer | string = '';
    if (outcome.status === 'succeeded') {
      await this.ensureCodes(dictionaryStrings(outcome));
      record = encodeSuccess(outcome, { sourceNumber, base: await this.start(), code: this.code });
      const payload = opts.sent ? payloadHash(opts.sent.platform, opts.sent.body) : ZERO_PAYLOAD;
      index = indexValue(userHash(outcome.app_user_id), payload, await this.runNumber(), key.length > TOKEN_FINGERPRINT_BYTES ? (key[TOKEN_FINGERPRINT_BYTES] as number) : 0);
    } else {
      record = headRecord(RECORD.failed, encodePlace(sourceNumber, outcome.line), user);
      failure = packFailure(outcome, sourceNumber);
      const recent: RecentError = { at: outcome.finished_at, src: outcome.src, line: outcome.line, reason: outcome.reason ?? 'unknown', message: outcome.message ?? '' };
      error = JSON.stringify(recent);
    }
    const request = opts.request;
    const requestArgs: string[] = ['', '', '', ''];
    if (request) {
      const bucket = timelineBucket(request.at ?? Date.now());
      requestArgs[0] = META.status(request.status);
      requestArgs[1] = timelineField(bucket, TIMELINE.requests);
      requestArgs[2] = latencyField(latencyBucket(request.durationMs));
      requestArgs[3] = request.rateLimited ? timelineField(bucket, TIMELINE.rateLimited) : '';
    }
    const answer = (onlyIfAbsent: boolean, request: string[]): Promise<number> =>
      callScriptBuffer<number>(
        this.redis,
        'recordAnswer',
        [k.counters, k.wide, k.failed, k.history, k.errors, k.timeline, k.latency, ix.state],
        [
          k.buckets,
          ix.buckets,
          key,
          outcome.status === 'succeeded' ? RECORD.succeeded : RECORD.failed,
          record,
          failure,
          onlyIfAbsent ? '1' : '0',
          error,
          // the record kinds double as the timeline's succeeded/failed kinds (redis/keys.ts TIMELINE)
          timelineField(timelineBucket(Date.parse(outcome.finished_at)), outcome.status === 'succeeded' ? TIMELINE.succeeded : TIMELINE.failed),
          index,
          ...request,
        ],
      );
    // The row's job completes once this returns. After a failover the answer is written again only if the new
    // master lost it (and its request is not counted twice).
    const written = await durable(
      this.redis,
      k.counters,
      () => answer(opts.onlyIfAbsent ?? false, requestArgs),
      () => answer(true, ['', '', '', '']),
    );
    return written === 1;
  }

  /** Writes a row's outcome without a request to count (the safety nets use onlyIfAbsent). */
  async recordOutcome(outcome: Outcome, opts: Omit<RecordOptions, 'request'> = {}): Promise<boolean> {
    return this.recordAnswer(outcome, opts);
  }

  /** Failed outcomes with their stored form, for a retry to select from and hand back to `reopen`. */
  async *failedRecords(): AsyncIterable<{ outcome: Outcome; stored: string }> {
    const sources = await this.sources();
    for (const k of this.shards) {
      for await (const [key, blob] of hashEntries(this.redis, k.failed)) yield { outcome: unpackFailure(key, blob, sources), stored: blob.toString('base64') };
    }
  }

  /** Makes failed rows pending again (reopenFailed-4.lua); returns how many were re-opened. */
  async reopen(records: { fp: string; stored: string }[]): Promise<number> {
    if (records.length === 0) return 0;
    const byShard = new Map<number, Buffer[]>();
    for (const r of records) {
      const key = keyBytes(r.fp);
      const s = shardOfKey(key);
      const args = byShard.get(s) ?? [];
      args.push(key, Buffer.from(r.stored, 'base64'));
      byShard.set(s, args);
    }
    const counts = await Promise.all(
      [...byShard].map(([s, args]) => {
        const k = this.shard(s);
        // Done again after a failover, it finds the rows it re-opened pending and re-opens none twice.
        return durable(this.redis, k.counters, () => callScriptBuffer<number>(this.redis, 'reopenFailed', [k.counters, k.wide, k.failed, k.history], [k.buckets, ...args]));
      }),
    );
    const n = counts.reduce((a, b) => a + b, 0);
    if (n > 0) await this.redis.hincrby(this.keys.meta, META.retries, 1);
    return n;
  }

  /** The most recent failures, newest first (at most 20). */
  async recentErrors(): Promise<RecentError[]> {
    const all = await Promise.all(this.shards.map((k) => this.redis.lrange(k.errors, 0, -1)));
    return all
      .flat()
      .map((e) => JSON.parse(e) as RecentError)
      .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0))
      .slice(0, RECENT_ERRORS);
  }

  /** Earlier outcomes of rows that were answered again (retries): shard by shard, each oldest first. */
  async *history(): AsyncIterable<Outcome> {
    const ctx = await this.decodeContext();
    for (const k of this.shards) {
      const total = await this.redis.llen(k.history);
      for (let start = 0; start < total; start += 1000) {
        for (const entry of await this.redis.lrangeBuffer(k.history, start, start + 999)) yield decodeHistoryEntry(entry, ctx);
      }
    }
  }

  /** Keeps the result of a `verify` pass (replacing the previous one) for the run's report. */
  async saveVerify(result: VerifySummary, mismatches: StateMismatch[]): Promise<void> {
    const tx = this.redis.multi().del(this.keys.verifyMismatches);
    for (let i = 0; i < mismatches.length; i += 500) tx.rpush(this.keys.verifyMismatches, ...mismatches.slice(i, i + 500).map((m) => JSON.stringify(m)));
    tx.hset(this.keys.meta, META.verify, JSON.stringify(result));
    await tx.exec();
  }

  async verifySummary(): Promise<VerifySummary | undefined> {
    const raw = await this.redis.hget(this.keys.meta, META.verify);
    return raw ? (JSON.parse(raw) as VerifySummary) : undefined;
  }

  async *verifyMismatches(): AsyncIterable<StateMismatch> {
    const total = await this.redis.llen(this.keys.verifyMismatches);
    for (let start = 0; start < total; start += 1000) {
      for (const raw of await this.redis.lrange(this.keys.verifyMismatches, start, start + 999)) yield JSON.parse(raw) as StateMismatch;
    }
  }

  /** Every row record of the run, shard by shard, as [record key, record]. */
  private async *records(): AsyncIterable<[Buffer, Buffer]> {
    for (const k of this.shards) yield* tableRecords(this.redis, { state: k.counters, buckets: k.buckets, wide: k.wide });
  }

  /** Every row admitted into the run (not rejected, not a duplicate): its key, place, user and where it stands. */
  async *rows(): AsyncIterable<RowState> {
    const sources = await this.sources();
    for await (const [key, rec] of this.records()) {
      const head = decodeHead(rec);
      yield {
        fp: keyText(key),
        status: ROW_STATUS[head.kind] ?? 'queued',
        src: sources[head.sourceNumber] ?? `source #${head.sourceNumber}`,
        line: head.line,
        app_user_id: head.appUserId,
      };
    }
  }

  /** Whether each of these rows (record keys) has a final answer. */
  async finished(fps: string[]): Promise<boolean[]> {
    const byShard = new Map<number, number[]>();
    const keys = fps.map(keyBytes);
    keys.forEach((key, i) => byShard.set(shardOfKey(key), [...(byShard.get(shardOfKey(key)) ?? []), i]));
    const out = new Array<boolean>(fps.length).fill(false);
    await Promise.all(
      [...byShard].map(async ([s, rows]) => {
        const k = this.shard(s);
        const recs = await callScriptBuffer<(Buffer | null)[]>(this.redis, 'findRecords', [k.counters, k.wide], [k.buckets, ...rows.map((i) => keys[i] as Buffer)]);
        rows.forEach((i, j) => {
          const kind = recs[j]?.[0];
          out[i] = kind === RECORD.succeeded.charCodeAt(0) || kind === RECORD.failed.charCodeAt(0);
        });
      }),
    );
    return out;
  }

  /** Rows skipped because an earlier run had migrated them. */
  async *alreadyMigrated(): AsyncIterable<{ src: string; line: number; fp: string }> {
    const sources = await this.sources();
    for await (const [key, rec] of this.records()) {
      if (rec[0] !== RECORD.skipped.charCodeAt(0)) continue;
      const head = decodeHead(rec);
      yield { src: sources[head.sourceNumber] ?? `source #${head.sourceNumber}`, line: head.line, fp: keyText(key) };
    }
  }

  /** Rows whose token another user has (held or sent), with the other side as far as the ledger knows it. */
  async *conflicts(): AsyncIterable<Conflict> {
    const sources = await this.sources();
    const runIds = new Map<number, string | null>();
    for (const k of this.shards) {
      for await (const [place, value] of hashEntries(this.redis, k.conflicts)) {
        const c = decodeConflict(value);
        const at = decodePlace(place);
        const conflict: Conflict = {
          src: sources[at.sourceNumber] ?? `source #${at.sourceNumber}`,
          line: at.line,
          app_user_id: c.appUserId,
          fp: keyText(c.key),
          held: c.held,
          other: {},
        };
        if (c.other.scope === 'run') {
          conflict.other = { run_id: this.runId, src: sources[c.other.sourceNumber] ?? `source #${c.other.sourceNumber}`, line: c.other.line, app_user_id: c.other.appUserId };
        } else {
          const { runNumber, variant } = c.other.entry;
          if (!runIds.has(runNumber)) runIds.set(runNumber, await this.redis.hget(this.names.runNumbers, `n:${runNumber}`));
          const runId = runIds.get(runNumber);
          if (runId) {
            conflict.other = {
              run_id: runId,
              ...(await earlierRow(
                this.redis,
                this.prefix,
                runId,
                Buffer.concat([c.key.subarray(0, TOKEN_FINGERPRINT_BYTES), variant > 0 ? Buffer.from([variant]) : Buffer.alloc(0)]),
              )),
            };
          }
        }
        yield conflict;
      }
    }
  }

  /** The final outcome of the row with this record key, if it has one. */
  async outcome(fp: string): Promise<Outcome | undefined> {
    const key = keyBytes(fp);
    const k = this.shard(shardOfKey(key));
    const [rec] = await callScriptBuffer<(Buffer | null)[]>(this.redis, 'findRecords', [k.counters, k.wide], [k.buckets, key]);
    if (!rec) return undefined;
    if (rec[0] === RECORD.succeeded.charCodeAt(0)) return decodeSuccess(key, rec, await this.decodeContext());
    if (rec[0] !== RECORD.failed.charCodeAt(0)) return undefined;
    const blob = await this.redis.hgetBuffer(k.failed, key);
    return blob ? unpackFailure(key, blob, await this.sources()) : undefined;
  }

  async markFinished(now = new Date()): Promise<void> {
    await durable(this.redis, this.keys.meta, () => this.redis.hsetnx(this.keys.meta, META.finishedAt, now.toISOString()));
  }

  /** The run's counters (summed over its shards) and state. */
  async state(): Promise<RunState> {
    const [meta, ...shards] = await Promise.all([this.redis.hgetall(this.keys.meta), ...this.shards.map((k) => this.redis.hgetall(k.counters))]);
    const counters = Object.fromEntries(
      Object.entries(COUNTER_FIELDS).map(([counter, field]) => [counter, [meta, ...shards].reduce((sum, h) => sum + Number(h[field] ?? 0), 0)]),
    ) as unknown as RunCounters;
    const byStatus: Record<string, number> = {};
    for (const h of shards) {
      for (const [k, v] of Object.entries(h)) {
        const status = META.statusOf(k);
        if (status !== undefined) byStatus[status] = (byStatus[status] ?? 0) + Number(v);
      }
    }
    const sources = await this.sources();
    const ingest = (meta[META.ingest] ?? 'pending') as RunState['ingest'];
    // The one definition of pending: queued rows without an outcome (summary, status and metrics read it here).
    const pending = Math.max(0, counters.rows_queued - counters.rows_succeeded - counters.rows_failed);
    return {
      run_id: this.runId,
      started_at: meta[META.startedAt],
      finished_at: meta[META.finishedAt],
      ingest,
      sources,
      by_http_status: byStatus,
      ...counters,
      rows_pending: pending,
      complete: ingest === INGEST_STATE.done && pending === 0,
    };
  }

  /** Every final outcome: the succeeded rows from their records, then the failed ones. */
  async *outcomes(): AsyncIterable<Outcome> {
    const ctx = await this.decodeContext();
    for await (const [key, rec] of this.records()) if (rec[0] === RECORD.succeeded.charCodeAt(0)) yield decodeSuccess(key, rec, ctx);
    for (const k of this.shards) for await (const [key, blob] of hashEntries(this.redis, k.failed)) yield unpackFailure(key, blob, ctx.sources);
  }

  rejections(): AsyncIterable<Rejection> {
    return this.scanJson<Rejection>((k) => k.rejected);
  }

  duplicates(): AsyncIterable<Duplicate> {
    return this.scanJson<Duplicate>((k) => k.duplicates);
  }

  private async *scanJson<T>(key: (k: RunShardKeys) => string): AsyncIterable<T> {
    for (const k of this.shards) for await (const [, raw] of hashEntries(this.redis, key(k))) yield JSON.parse(raw.toString('utf8')) as T;
  }
}

/** Place and user of a row of another run, by record key (for a conflict with an earlier run). */
async function earlierRow(redis: RedisClient, prefix: string, runId: string, key: Buffer): Promise<{ src?: string; line?: number; app_user_id?: string }> {
  const names = new RedisKeys(prefix);
  const k = names.runShard(runId, shardOfKey(key));
  const [rec] = await callScriptBuffer<(Buffer | null)[]>(redis, 'findRecords', [k.counters, k.wide], [k.buckets, key]);
  if (!rec) return {};
  const head = decodeHead(rec);
  const all = await redis.hgetall(names.run(runId).sources);
  const name = Object.entries(all).find(([, id]) => Number(id) === head.sourceNumber)?.[0];
  return { ...(name !== undefined ? { src: name } : {}), line: head.line, app_user_id: head.appUserId };
}
