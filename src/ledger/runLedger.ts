// The run ledger: everything Redis knows about one run (counters, which rows were seen, every outcome,
// rejection and duplicate). All multi-key updates are Lua scripts (src/redis/scripts/: admit, recordOnce,
// recordOutcome, reopenFailed, sourceId; each file says what its KEYS and ARGV are), so counters can never
// drift from the records they count, even when a worker is killed between two writes or a row is processed twice.
import type { Duplicate, Outcome, Rejection, RunCounters, RunState } from '../types.js';
import type { StateMismatch } from '../state/mismatch.js';
import type { RedisClient } from '../redis/connection.js';
import { INGEST_STATE, latencyField, locationOf, META, parseTimelineField, RedisKeys, TIMELINE, timelineField, type RunKeys } from '../redis/keys.js';
import { callScript, loadScripts } from '../redis/scripts.js';
import { decodeOutcome, encodeOutcome, STATUS_CODES } from './outcomeCodec.js';
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
export type Admission = { kind: 'new' } | { kind: 'migrated' } | { kind: 'requeue' } | { kind: 'done' } | { kind: 'duplicate'; first: string };

/** Where each counter of RunState lives in the meta hash. */
const COUNTER_FIELDS: Record<keyof RunCounters, string> = {
  rows_read: META.rowsRead,
  rows_rejected: META.rowsRejected,
  rows_duplicate: META.rowsDuplicate,
  rows_queued: META.rowsQueued,
  rows_succeeded: META.rowsSucceeded,
  rows_failed: META.rowsFailed,
  rows_already_migrated: META.rowsAlreadyMigrated,
  requests_sent: META.requestsSent,
  retries: META.retries,
};

export class RunLedger {
  readonly keys: RunKeys;
  private readonly shared: RedisKeys;
  private readonly sourceIds = new Map<string, number>();

  constructor(
    private readonly redis: RedisClient,
    readonly prefix: string,
    readonly runId: string,
  ) {
    loadScripts(redis);
    this.shared = new RedisKeys(prefix);
    this.keys = this.shared.run(runId);
  }

  /** Creates the run if new (keeps the first start time) and marks an ingest as running. */
  async beginIngest(sources: string[], now = new Date()): Promise<void> {
    const iso = now.toISOString();
    const tx = this.redis.multi();
    tx.hsetnx(this.keys.meta, META.startedAt, iso);
    tx.hset(this.keys.meta, META.runId, this.runId, META.ingest, INGEST_STATE.running);
    tx.hdel(this.keys.meta, META.finishedAt);
    tx.zadd(this.shared.runs, 'NX', now.getTime(), this.runId);
    await tx.exec();
    for (const source of sources) await this.sourceId(source);
  }

  /** The number that stands for a source in this run's compact records (cached: it never changes). */
  async sourceId(source: string): Promise<number> {
    let id = this.sourceIds.get(source);
    if (id === undefined) {
      id = await callScript<number>(this.redis, 'sourceId', [this.keys.sources, this.keys.meta], [source]);
      this.sourceIds.set(source, id);
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

  private async place(source: string, line: number): Promise<string> {
    return `${await this.sourceId(source)}#${line}`;
  }

  private async placeName(place: string, sources?: string[]): Promise<string> {
    const hash = place.indexOf('#');
    const names = sources ?? (await this.sources());
    return locationOf(names[Number(place.slice(0, hash))] ?? place.slice(0, hash), Number(place.slice(hash + 1)));
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
    await this.redis.hset(this.keys.meta, META.ingest, INGEST_STATE.done);
  }

  async exists(): Promise<boolean> {
    return (await this.redis.exists(this.keys.meta)) === 1;
  }

  /** Decides what to do with each row read; with `force`, rows migrated by earlier runs are sent again. */
  async admit(rows: { fp: string; src: string; line: number }[], opts: { force?: boolean } = {}): Promise<Admission[]> {
    if (rows.length === 0) return [];
    const args: string[] = [];
    for (const row of rows) args.push(row.fp, await this.place(row.src, row.line));
    const k = this.keys;
    const raw = await callScript<string[]>(this.redis, 'admit', [k.seen, k.outcomes, k.meta, k.skipped, this.shared.migrated], [opts.force ? '1' : '0', ...args]);
    const admissions: Admission[] = [];
    for (const r of raw) {
      if (r === 'n') admissions.push({ kind: 'new' });
      else if (r === 'm') admissions.push({ kind: 'migrated' });
      else if (r === 'q') admissions.push({ kind: 'requeue' });
      else if (r === 'd') admissions.push({ kind: 'done' });
      else admissions.push({ kind: 'duplicate', first: await this.placeName(r.slice(1)) });
    }
    return admissions;
  }

  /** Records a rejected row once per place in the input; returns whether it was new. */
  async reject(rejection: Rejection): Promise<boolean> {
    const loc = locationOf(rejection.src, rejection.line);
    return (await callScript<number>(this.redis, 'recordOnce', [this.keys.rejected, this.keys.meta], [loc, JSON.stringify(rejection), META.rowsRejected])) === 1;
  }

  async duplicate(dup: Duplicate): Promise<boolean> {
    const loc = locationOf(dup.src, dup.line);
    return (await callScript<number>(this.redis, 'recordOnce', [this.keys.duplicates, this.keys.meta], [loc, JSON.stringify(dup), META.rowsDuplicate])) === 1;
  }

  /** Counts one HTTP request and its status (or network error name). */
  async countRequest(request: { status: string; durationMs: number; rateLimited: boolean; at?: number }): Promise<void> {
    const bucket = timelineBucket(request.at ?? Date.now());
    const p = this.redis
      .pipeline()
      .hincrby(this.keys.meta, META.requestsSent, 1)
      .hincrby(this.keys.meta, META.status(request.status), 1)
      .hincrby(this.keys.timeline, timelineField(bucket, TIMELINE.requests), 1)
      .hincrby(this.keys.latency, latencyField(latencyBucket(request.durationMs)), 1);
    if (request.rateLimited) p.hincrby(this.keys.timeline, timelineField(bucket, TIMELINE.rateLimited), 1);
    await p.exec();
  }

  /** The run's timeline, in buckets of TIMELINE_BUCKET_SECONDS, oldest first. */
  async timeline(): Promise<TimelinePoint[]> {
    const raw = await this.redis.hgetall(this.keys.timeline);
    const points = new Map<number, TimelinePoint>();
    for (const [field, value] of Object.entries(raw)) {
      const { t, kind } = parseTimelineField(field);
      const point = points.get(t) ?? { t, requests: 0, rateLimited: 0, succeeded: 0, failed: 0 };
      const n = Number(value);
      if (kind === TIMELINE.requests) point.requests += n;
      else if (kind === TIMELINE.rateLimited) point.rateLimited += n;
      else if (kind === TIMELINE.succeeded) point.succeeded += n;
      else if (kind === TIMELINE.failed) point.failed += n;
      points.set(point.t, point);
    }
    return [...points.values()].sort((a, b) => a.t - b.t);
  }

  /** Request latency histogram: counts per LATENCY_BUCKETS_MS bound, plus the overflow bucket. */
  async latencyBuckets(): Promise<number[]> {
    const raw = await this.redis.hgetall(this.keys.latency);
    return Array.from({ length: LATENCY_BUCKETS_MS.length + 1 }, (_, i) => Number(raw[latencyField(i)] ?? 0));
  }

  /** Writes a row's outcome. With onlyIfAbsent, an outcome already there wins (used by safety nets). */
  async recordOutcome(outcome: Outcome, opts: { onlyIfAbsent?: boolean } = {}): Promise<boolean> {
    const k = this.keys;
    const error: RecentError | undefined =
      outcome.status === 'failed'
        ? { at: outcome.finished_at, src: outcome.src, line: outcome.line, reason: outcome.reason ?? 'unknown', message: outcome.message ?? '' }
        : undefined;
    const status = STATUS_CODES[outcome.status];
    const written = await callScript<number>(
      this.redis,
      'recordOutcome',
      [k.outcomes, k.meta, this.shared.migrated, k.history, k.errors, k.timeline],
      [
        outcome.fp,
        encodeOutcome(outcome, await this.sourceId(outcome.src)),
        status,
        opts.onlyIfAbsent ? '1' : '0',
        outcome.finished_at,
        error ? JSON.stringify(error) : '',
        // the outcome status codes double as the timeline's succeeded/failed kinds (redis/keys.ts TIMELINE)
        timelineField(timelineBucket(Date.parse(outcome.finished_at)), status),
      ],
    );
    return written === 1;
  }

  /** The stored form of failed outcomes, for a retry to select from and hand back to `reopen`. */
  async *failedRecords(): AsyncIterable<{ outcome: Outcome; stored: string }> {
    const sources = await this.sources();
    for await (const [fp, raw] of this.scan(this.keys.outcomes)) {
      if (raw.startsWith(`["${STATUS_CODES.failed}"`)) yield { outcome: decodeOutcome(fp, raw, sources), stored: raw };
    }
  }

  /** Makes failed rows pending again (scripts/reopenFailed-3.lua); returns how many were re-opened. */
  async reopen(records: { fp: string; stored: string }[]): Promise<number> {
    if (records.length === 0) return 0;
    const args = records.flatMap((r) => [r.fp, r.stored]);
    return callScript<number>(this.redis, 'reopenFailed', [this.keys.outcomes, this.keys.meta, this.keys.history], args);
  }

  /** The most recent failures, newest first (at most 20). */
  async recentErrors(): Promise<RecentError[]> {
    return (await this.redis.lrange(this.keys.errors, 0, -1)).map((e) => JSON.parse(e) as RecentError);
  }

  /** Earlier outcomes of rows that were sent again (retries), oldest first. */
  async *history(): AsyncIterable<Outcome> {
    const sources = await this.sources();
    const total = await this.redis.llen(this.keys.history);
    for (let start = 0; start < total; start += 1000) {
      for (const entry of await this.redis.lrange(this.keys.history, start, start + 999)) {
        const space = entry.indexOf(' ');
        yield decodeOutcome(entry.slice(0, space), entry.slice(space + 1), sources);
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

  /** Rows skipped because an earlier run had migrated them. */
  async *alreadyMigrated(): AsyncIterable<{ src: string; line: number; fp: string }> {
    const sources = await this.sources();
    for await (const [fp, place] of this.scan(this.keys.skipped)) {
      const hash = place.indexOf('#');
      yield { src: sources[Number(place.slice(0, hash))] ?? place.slice(0, hash), line: Number(place.slice(hash + 1)), fp };
    }
  }

  async outcome(fp: string): Promise<Outcome | undefined> {
    const raw = await this.redis.hget(this.keys.outcomes, fp);
    return raw ? decodeOutcome(fp, raw, await this.sources()) : undefined;
  }

  async markFinished(now = new Date()): Promise<void> {
    await this.redis.hsetnx(this.keys.meta, META.finishedAt, now.toISOString());
  }

  async state(): Promise<RunState> {
    const meta = await this.redis.hgetall(this.keys.meta);
    const counters = Object.fromEntries(Object.entries(COUNTER_FIELDS).map(([counter, field]) => [counter, Number(meta[field] ?? 0)])) as unknown as RunCounters;
    const byStatus: Record<string, number> = {};
    for (const [k, v] of Object.entries(meta)) {
      const status = META.statusOf(k);
      if (status !== undefined) byStatus[status] = Number(v);
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

  async *outcomes(): AsyncIterable<Outcome> {
    const sources = await this.sources();
    for await (const [fp, raw] of this.scan(this.keys.outcomes)) yield decodeOutcome(fp, raw, sources);
  }

  rejections(): AsyncIterable<Rejection> {
    return this.scanJson<Rejection>(this.keys.rejected);
  }

  duplicates(): AsyncIterable<Duplicate> {
    return this.scanJson<Duplicate>(this.keys.duplicates);
  }

  private async *scanJson<T>(key: string): AsyncIterable<T> {
    for await (const [, raw] of this.scan(key)) yield JSON.parse(raw) as T;
  }

  private async *scan(key: string): AsyncIterable<[string, string]> {
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(key, cursor, 'COUNT', 1000);
      cursor = next;
      for (let i = 1; i < entries.length; i += 2) yield [entries[i - 1] as string, entries[i] as string];
    } while (cursor !== '0');
  }
}
