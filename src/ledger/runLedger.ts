// The run ledger: everything Redis knows about one run (counters, which rows were seen, every outcome,
// rejection and duplicate). All multi-key updates are Lua scripts here, so counters can never drift from the
// records they count, even when a worker is killed between two writes or a row is processed twice.
import type { Redis } from 'ioredis';
import type { Duplicate, Outcome, Rejection, RunCounters, RunState, StateMismatch } from '../types.js';
import { locationOf, migratedKey, runKeys, runsIndexKey, type RunKeys } from './keys.js';

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

/** One row whose current state differs, as `verify` found it. */
export interface VerifyMismatch extends StateMismatch {
  src: string;
  line: number;
  app_user_id: string;
  product_id?: string;
}

/** A failure as the `status` command shows it. */
export interface RecentError {
  at: string;
  src: string;
  line: number;
  reason: string;
  message: string;
}
import { decodeOutcome, encodeOutcome, STATUS_CODES, STATUS_INDEX } from './outcomeCodec.js';
import { LATENCY_BUCKETS_MS, TIMELINE_BUCKET_SECONDS, type TimelinePoint } from '../reports/reportData.js';

function timelineBucket(epochMs: number): number {
  return Math.floor(epochMs / 1000 / TIMELINE_BUCKET_SECONDS) * TIMELINE_BUCKET_SECONDS;
}

function latencyBucket(ms: number): number {
  const i = LATENCY_BUCKETS_MS.findIndex((bound) => ms <= bound);
  return i === -1 ? LATENCY_BUCKETS_MS.length : i;
}

// KEYS: seen, outcomes, meta, skipped, migrated. ARGV: force ('1'/'0'), then fp1, loc1, fp2, loc2, …
// Returns per row: 'n' new (queue it), 'm' already migrated by an earlier run (skip, unless forced), 'q' seen
// at this same place without outcome (queue again: re-adding an existing job id is a no-op), 'd' seen here and
// finished or skipped (nothing to do), or 'u<location>' duplicate of another row of this run.
const ADMIT = `
local out = {}
local fresh, queued, migrated = 0, 0, 0
local force = ARGV[1] == '1'
for i = 2, #ARGV, 2 do
  local fp, loc = ARGV[i], ARGV[i + 1]
  local first = redis.call('HGET', KEYS[1], fp)
  if not first then
    redis.call('HSET', KEYS[1], fp, loc)
    fresh = fresh + 1
    if not force and redis.call('SISMEMBER', KEYS[5], fp) == 1 then
      redis.call('HSET', KEYS[4], fp, loc)
      migrated = migrated + 1
      out[#out + 1] = 'm'
    else
      queued = queued + 1
      out[#out + 1] = 'n'
    end
  elseif first == loc then
    if redis.call('HEXISTS', KEYS[2], fp) == 1 or redis.call('HEXISTS', KEYS[4], fp) == 1 then out[#out + 1] = 'd' else out[#out + 1] = 'q' end
  else
    out[#out + 1] = 'u' .. first
  end
end
if fresh > 0 then redis.call('HINCRBY', KEYS[3], 'rows_read', fresh) end
if queued > 0 then redis.call('HINCRBY', KEYS[3], 'rows_queued', queued) end
if migrated > 0 then redis.call('HINCRBY', KEYS[3], 'rows_already_migrated', migrated) end
return out
`;

// KEYS: records hash, meta. ARGV: location, json, counter name. Counts a row only the first time its place is seen.
const RECORD_ONCE = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'rows_read', 1)
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
  return 1
end
return 0
`;

// KEYS: outcomes, meta, migrated, history, errors, timeline. ARGV: fp, encoded outcome, status code ('s'/'f'),
// onlyIfAbsent ('1'/'0'), now, error summary (for failures), timeline bucket. Moves the row between the succeeded/failed
// counters when a later attempt changes its status, keeping the replaced outcome in the history. A success
// joins the cross-run set of migrated fingerprints; a failure joins the short list of recent errors. The
// status code is element ${STATUS_INDEX} of the stored array (outcomeCodec.ts).
const RECORD_OUTCOME = `
local counters = { s = 'rows_succeeded', f = 'rows_failed' }
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev and ARGV[4] == '1' then return 0 end
local prevStatus = false
if prev then
  prevStatus = cjson.decode(prev)[${STATUS_INDEX}]
  redis.call('RPUSH', KEYS[4], ARGV[1] .. ' ' .. prev)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if prevStatus ~= ARGV[3] then
  if prevStatus then redis.call('HINCRBY', KEYS[2], counters[prevStatus], -1) end
  redis.call('HINCRBY', KEYS[2], counters[ARGV[3]], 1)
end
redis.call('HSET', KEYS[2], 'last_outcome_at', ARGV[5])
redis.call('HINCRBY', KEYS[6], ARGV[7] .. ':' .. ARGV[3], 1)
if ARGV[3] == 's' then
  redis.call('SADD', KEYS[3], ARGV[1])
else
  redis.call('LPUSH', KEYS[5], ARGV[6])
  redis.call('LTRIM', KEYS[5], 0, 19)
end
return 1
`;

// KEYS: outcomes, meta, history. ARGV: fp1, expected1, fp2, expected2, …
// Re-opens failed rows for a retry: each outcome still exactly as the caller read it moves to the history and
// the row counts as pending again. One that changed meanwhile (its retry already finished) is left alone.
const REOPEN = `
local n = 0
for i = 1, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if current and current == ARGV[i + 1] then
    redis.call('RPUSH', KEYS[3], ARGV[i] .. ' ' .. current)
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HINCRBY', KEYS[2], 'rows_failed', -1)
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[2], 'retries', 1) end
return n
`;

// KEYS: sources hash, meta. ARGV: source name. Numbers sources in order of first use.
const SOURCE_ID = `
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return tonumber(id) end
id = redis.call('HINCRBY', KEYS[2], 'source_count', 1) - 1
redis.call('HSET', KEYS[1], ARGV[1], id)
return id
`;

export type Admission = { kind: 'new' } | { kind: 'migrated' } | { kind: 'requeue' } | { kind: 'done' } | { kind: 'duplicate'; first: string };

type LedgerRedis = Redis & {
  rcmAdmit(seen: string, outcomes: string, meta: string, skipped: string, migrated: string, force: string, ...args: string[]): Promise<string[]>;
  rcmRecordOnce(records: string, meta: string, location: string, json: string, counter: string): Promise<number>;
  rcmRecordOutcome(
    outcomes: string,
    meta: string,
    migrated: string,
    history: string,
    errors: string,
    timeline: string,
    fp: string,
    json: string,
    status: string,
    onlyIfAbsent: string,
    now: string,
    error: string,
    bucket: string,
  ): Promise<number>;
  rcmReopen(outcomes: string, meta: string, history: string, ...args: string[]): Promise<number>;
  rcmSourceId(sources: string, meta: string, source: string): Promise<number>;
};

function withScripts(redis: Redis): LedgerRedis {
  const r = redis as LedgerRedis;
  if (typeof r.rcmAdmit !== 'function') {
    redis.defineCommand('rcmAdmit', { numberOfKeys: 5, lua: ADMIT });
    redis.defineCommand('rcmRecordOnce', { numberOfKeys: 2, lua: RECORD_ONCE });
    redis.defineCommand('rcmRecordOutcome', { numberOfKeys: 6, lua: RECORD_OUTCOME });
    redis.defineCommand('rcmReopen', { numberOfKeys: 3, lua: REOPEN });
    redis.defineCommand('rcmSourceId', { numberOfKeys: 2, lua: SOURCE_ID });
  }
  return r;
}

const COUNTERS: (keyof RunCounters)[] = [
  'rows_read',
  'rows_rejected',
  'rows_duplicate',
  'rows_queued',
  'rows_succeeded',
  'rows_failed',
  'rows_already_migrated',
  'requests_sent',
  'retries',
];

export class RunLedger {
  readonly keys: RunKeys;
  private readonly redis: LedgerRedis;
  private readonly sourceIds = new Map<string, number>();

  constructor(
    redis: Redis,
    readonly prefix: string,
    readonly runId: string,
  ) {
    this.redis = withScripts(redis);
    this.keys = runKeys(prefix, runId);
  }

  /** Creates the run if new (keeps the first start time) and marks an ingest as running. */
  async beginIngest(sources: string[], now = new Date()): Promise<void> {
    const iso = now.toISOString();
    const tx = this.redis.multi();
    tx.hsetnx(this.keys.meta, 'started_at', iso);
    tx.hset(this.keys.meta, 'run_id', this.runId, 'ingest', 'running');
    tx.hdel(this.keys.meta, 'finished_at');
    tx.zadd(runsIndexKey(this.prefix), 'NX', now.getTime(), this.runId);
    await tx.exec();
    for (const source of sources) await this.sourceId(source);
  }

  /** The number that stands for a source in this run's compact records (cached: it never changes). */
  async sourceId(source: string): Promise<number> {
    let id = this.sourceIds.get(source);
    if (id === undefined) {
      id = await this.redis.rcmSourceId(this.keys.sources, this.keys.meta, source);
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
    await this.redis.hset(this.keys.meta, `progress:${await this.sourceId(source)}`, line);
  }

  /** The line up to which `source` was ingested, 0 when never. */
  async progress(source: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.meta, `progress:${await this.sourceId(source)}`)) ?? 0);
  }

  async endIngest(): Promise<void> {
    await this.redis.hset(this.keys.meta, 'ingest', 'done');
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
    const raw = await this.redis.rcmAdmit(k.seen, k.outcomes, k.meta, k.skipped, migratedKey(this.prefix), opts.force ? '1' : '0', ...args);
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
    return (await this.redis.rcmRecordOnce(this.keys.rejected, this.keys.meta, loc, JSON.stringify(rejection), 'rows_rejected')) === 1;
  }

  async duplicate(dup: Duplicate): Promise<boolean> {
    const loc = locationOf(dup.src, dup.line);
    return (await this.redis.rcmRecordOnce(this.keys.duplicates, this.keys.meta, loc, JSON.stringify(dup), 'rows_duplicate')) === 1;
  }

  /** Counts one HTTP request and its status (or network error name). */
  async countRequest(request: { status: string; durationMs: number; rateLimited: boolean; at?: number }): Promise<void> {
    const bucket = timelineBucket(request.at ?? Date.now());
    const p = this.redis
      .pipeline()
      .hincrby(this.keys.meta, 'requests_sent', 1)
      .hincrby(this.keys.meta, `status:${request.status}`, 1)
      .hincrby(this.keys.timeline, `${bucket}:r`, 1)
      .hincrby(this.keys.latency, String(latencyBucket(request.durationMs)), 1);
    if (request.rateLimited) p.hincrby(this.keys.timeline, `${bucket}:l`, 1);
    await p.exec();
  }

  /** The run's timeline, in buckets of TIMELINE_BUCKET_SECONDS, oldest first. */
  async timeline(): Promise<TimelinePoint[]> {
    const raw = await this.redis.hgetall(this.keys.timeline);
    const points = new Map<number, TimelinePoint>();
    for (const [field, value] of Object.entries(raw)) {
      const [t, kind] = field.split(':') as [string, string];
      const point = points.get(Number(t)) ?? { t: Number(t), requests: 0, rateLimited: 0, succeeded: 0, failed: 0 };
      const n = Number(value);
      if (kind === 'r') point.requests += n;
      else if (kind === 'l') point.rateLimited += n;
      else if (kind === 's') point.succeeded += n;
      else if (kind === 'f') point.failed += n;
      points.set(point.t, point);
    }
    return [...points.values()].sort((a, b) => a.t - b.t);
  }

  /** Request latency histogram: counts per LATENCY_BUCKETS_MS bound, plus the overflow bucket. */
  async latencyBuckets(): Promise<number[]> {
    const raw = await this.redis.hgetall(this.keys.latency);
    return Array.from({ length: LATENCY_BUCKETS_MS.length + 1 }, (_, i) => Number(raw[String(i)] ?? 0));
  }

  /** Writes a row's outcome. With onlyIfAbsent, an outcome already there wins (used by safety nets). */
  async recordOutcome(outcome: Outcome, opts: { onlyIfAbsent?: boolean } = {}): Promise<boolean> {
    const k = this.keys;
    const error: RecentError | undefined =
      outcome.status === 'failed'
        ? { at: outcome.finished_at, src: outcome.src, line: outcome.line, reason: outcome.reason ?? 'unknown', message: outcome.message ?? '' }
        : undefined;
    const written = await this.redis.rcmRecordOutcome(
      k.outcomes,
      k.meta,
      migratedKey(this.prefix),
      k.history,
      k.errors,
      k.timeline,
      outcome.fp,
      encodeOutcome(outcome, await this.sourceId(outcome.src)),
      STATUS_CODES[outcome.status],
      opts.onlyIfAbsent ? '1' : '0',
      outcome.finished_at,
      error ? JSON.stringify(error) : '',
      String(timelineBucket(Date.parse(outcome.finished_at))),
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

  /** Makes failed rows pending again (see REOPEN); returns how many were re-opened. */
  async reopen(records: { fp: string; stored: string }[]): Promise<number> {
    if (records.length === 0) return 0;
    const args = records.flatMap((r) => [r.fp, r.stored]);
    return this.redis.rcmReopen(this.keys.outcomes, this.keys.meta, this.keys.history, ...args);
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
  async saveVerify(result: VerifySummary, mismatches: VerifyMismatch[]): Promise<void> {
    const tx = this.redis.multi().del(this.keys.verifyMismatches);
    for (let i = 0; i < mismatches.length; i += 500) tx.rpush(this.keys.verifyMismatches, ...mismatches.slice(i, i + 500).map((m) => JSON.stringify(m)));
    tx.hset(this.keys.meta, 'verify', JSON.stringify(result));
    await tx.exec();
  }

  async verifySummary(): Promise<VerifySummary | undefined> {
    const raw = await this.redis.hget(this.keys.meta, 'verify');
    return raw ? (JSON.parse(raw) as VerifySummary) : undefined;
  }

  async *verifyMismatches(): AsyncIterable<VerifyMismatch> {
    const total = await this.redis.llen(this.keys.verifyMismatches);
    for (let start = 0; start < total; start += 1000) {
      for (const raw of await this.redis.lrange(this.keys.verifyMismatches, start, start + 999)) yield JSON.parse(raw) as VerifyMismatch;
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
    await this.redis.hsetnx(this.keys.meta, 'finished_at', now.toISOString());
  }

  async state(): Promise<RunState> {
    const meta = await this.redis.hgetall(this.keys.meta);
    const num = (k: string): number => Number(meta[k] ?? 0);
    const counters = Object.fromEntries(COUNTERS.map((k) => [k, num(k)])) as unknown as RunCounters;
    const byStatus: Record<string, number> = {};
    for (const [k, v] of Object.entries(meta)) if (k.startsWith('status:')) byStatus[k.slice(7)] = Number(v);
    const sources = await this.sources();
    const ingest = (meta.ingest ?? 'pending') as RunState['ingest'];
    return {
      run_id: this.runId,
      started_at: meta.started_at,
      finished_at: meta.finished_at,
      ingest,
      sources,
      by_http_status: byStatus,
      ...counters,
      complete: ingest === 'done' && counters.rows_succeeded + counters.rows_failed >= counters.rows_queued,
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
