// The run ledger: everything Redis knows about one run (counters, which rows were seen, every outcome,
// rejection and duplicate). All multi-key updates are Lua scripts here, so counters can never drift from the
// records they count, even when a worker is killed between two writes or a row is processed twice.
import type { Redis } from 'ioredis';
import type { Duplicate, Outcome, Rejection, RunCounters, RunState } from '../types.js';
import { locationOf, runKeys, runsIndexKey, type RunKeys } from './keys.js';
import { decodeOutcome, encodeOutcome, STATUS_CODES, STATUS_INDEX } from './outcomeCodec.js';

// KEYS: seen, outcomes, meta. ARGV: fp1, loc1, fp2, loc2, …
// Returns per row: 'n' new (queue it), 'q' seen at this same place without outcome (queue again: re-adding an
// existing job id is a no-op), 'd' seen here and finished (skip), or 'u<location>' duplicate of another row.
const ADMIT = `
local out = {}
local fresh = 0
for i = 1, #ARGV, 2 do
  local fp, loc = ARGV[i], ARGV[i + 1]
  local first = redis.call('HGET', KEYS[1], fp)
  if not first then
    redis.call('HSET', KEYS[1], fp, loc)
    fresh = fresh + 1
    out[#out + 1] = 'n'
  elseif first == loc then
    if redis.call('HEXISTS', KEYS[2], fp) == 1 then out[#out + 1] = 'd' else out[#out + 1] = 'q' end
  else
    out[#out + 1] = 'u' .. first
  end
end
if fresh > 0 then
  redis.call('HINCRBY', KEYS[3], 'rows_read', fresh)
  redis.call('HINCRBY', KEYS[3], 'rows_queued', fresh)
end
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

// KEYS: outcomes, meta. ARGV: fp, encoded outcome, status code ('s'/'f'), onlyIfAbsent ('1'/'0'), now.
// Moves the row between the succeeded/failed counters when a later attempt changes its status. The status
// code is element ${STATUS_INDEX} of the stored array (outcomeCodec.ts).
const RECORD_OUTCOME = `
local counters = { s = 'rows_succeeded', f = 'rows_failed' }
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev and ARGV[4] == '1' then return 0 end
local prevStatus = false
if prev then prevStatus = cjson.decode(prev)[${STATUS_INDEX}] end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if prevStatus ~= ARGV[3] then
  if prevStatus then redis.call('HINCRBY', KEYS[2], counters[prevStatus], -1) end
  redis.call('HINCRBY', KEYS[2], counters[ARGV[3]], 1)
end
redis.call('HSET', KEYS[2], 'last_outcome_at', ARGV[5])
return 1
`;

// KEYS: sources hash, meta. ARGV: source name. Numbers sources in order of first use.
const SOURCE_ID = `
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return tonumber(id) end
id = redis.call('HINCRBY', KEYS[2], 'source_count', 1) - 1
redis.call('HSET', KEYS[1], ARGV[1], id)
return id
`;

export type Admission = { kind: 'new' } | { kind: 'requeue' } | { kind: 'done' } | { kind: 'duplicate'; first: string };

type LedgerRedis = Redis & {
  rcmAdmit(seen: string, outcomes: string, meta: string, ...args: string[]): Promise<string[]>;
  rcmRecordOnce(records: string, meta: string, location: string, json: string, counter: string): Promise<number>;
  rcmRecordOutcome(outcomes: string, meta: string, fp: string, json: string, status: string, onlyIfAbsent: string, now: string): Promise<number>;
  rcmSourceId(sources: string, meta: string, source: string): Promise<number>;
};

function withScripts(redis: Redis): LedgerRedis {
  const r = redis as LedgerRedis;
  if (typeof r.rcmAdmit !== 'function') {
    redis.defineCommand('rcmAdmit', { numberOfKeys: 3, lua: ADMIT });
    redis.defineCommand('rcmRecordOnce', { numberOfKeys: 2, lua: RECORD_ONCE });
    redis.defineCommand('rcmRecordOutcome', { numberOfKeys: 2, lua: RECORD_OUTCOME });
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
  'requests_sent',
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

  async endIngest(): Promise<void> {
    await this.redis.hset(this.keys.meta, 'ingest', 'done');
  }

  async exists(): Promise<boolean> {
    return (await this.redis.exists(this.keys.meta)) === 1;
  }

  async admit(rows: { fp: string; src: string; line: number }[]): Promise<Admission[]> {
    if (rows.length === 0) return [];
    const args: string[] = [];
    for (const row of rows) args.push(row.fp, await this.place(row.src, row.line));
    const raw = await this.redis.rcmAdmit(this.keys.seen, this.keys.outcomes, this.keys.meta, ...args);
    const admissions: Admission[] = [];
    for (const r of raw) {
      if (r === 'n') admissions.push({ kind: 'new' });
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
  async countRequest(status: string): Promise<void> {
    await this.redis.pipeline().hincrby(this.keys.meta, 'requests_sent', 1).hincrby(this.keys.meta, `status:${status}`, 1).exec();
  }

  /** Writes a row's outcome. With onlyIfAbsent, an outcome already there wins (used by safety nets). */
  async recordOutcome(outcome: Outcome, opts: { onlyIfAbsent?: boolean } = {}): Promise<boolean> {
    const written = await this.redis.rcmRecordOutcome(
      this.keys.outcomes,
      this.keys.meta,
      outcome.fp,
      encodeOutcome(outcome, await this.sourceId(outcome.src)),
      STATUS_CODES[outcome.status],
      opts.onlyIfAbsent ? '1' : '0',
      outcome.finished_at,
    );
    return written === 1;
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
