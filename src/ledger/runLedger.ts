// The run ledger: everything Redis knows about one run (counters, which rows were seen, every outcome,
// rejection and duplicate). All multi-key updates are Lua scripts here, so counters can never drift from the
// records they count, even when a worker is killed between two writes or a row is processed twice.
import type { Redis } from 'ioredis';
import type { Duplicate, Outcome, Rejection, RunCounters, RunState } from '../types.js';
import { locationOf, runKeys, runsIndexKey, type RunKeys } from './keys.js';

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

// KEYS: outcomes, meta. ARGV: fp, json, status, onlyIfAbsent ('1'/'0'), now.
// Moves the row between the succeeded/failed counters when a later attempt changes its status.
const RECORD_OUTCOME = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev and ARGV[4] == '1' then return 0 end
local prevStatus = false
if prev then prevStatus = cjson.decode(prev)['status'] end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if prevStatus ~= ARGV[3] then
  if prevStatus then redis.call('HINCRBY', KEYS[2], 'rows_' .. prevStatus, -1) end
  redis.call('HINCRBY', KEYS[2], 'rows_' .. ARGV[3], 1)
end
redis.call('HSET', KEYS[2], 'last_outcome_at', ARGV[5])
return 1
`;

export type Admission = { kind: 'new' } | { kind: 'requeue' } | { kind: 'done' } | { kind: 'duplicate'; first: string };

type LedgerRedis = Redis & {
  rcmAdmit(seen: string, outcomes: string, meta: string, ...args: string[]): Promise<string[]>;
  rcmRecordOnce(records: string, meta: string, location: string, json: string, counter: string): Promise<number>;
  rcmRecordOutcome(outcomes: string, meta: string, fp: string, json: string, status: string, onlyIfAbsent: string, now: string): Promise<number>;
};

function withScripts(redis: Redis): LedgerRedis {
  const r = redis as LedgerRedis;
  if (typeof r.rcmAdmit !== 'function') {
    redis.defineCommand('rcmAdmit', { numberOfKeys: 3, lua: ADMIT });
    redis.defineCommand('rcmRecordOnce', { numberOfKeys: 2, lua: RECORD_ONCE });
    redis.defineCommand('rcmRecordOutcome', { numberOfKeys: 2, lua: RECORD_OUTCOME });
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
    for (const source of sources) tx.hsetnx(this.keys.meta, `source:${source}`, iso);
    await tx.exec();
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
    for (const row of rows) args.push(row.fp, locationOf(row.src, row.line));
    const raw = await this.redis.rcmAdmit(this.keys.seen, this.keys.outcomes, this.keys.meta, ...args);
    return raw.map((r): Admission => {
      if (r === 'n') return { kind: 'new' };
      if (r === 'q') return { kind: 'requeue' };
      if (r === 'd') return { kind: 'done' };
      return { kind: 'duplicate', first: r.slice(1) };
    });
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
      JSON.stringify(outcome),
      outcome.status,
      opts.onlyIfAbsent ? '1' : '0',
      outcome.finished_at,
    );
    return written === 1;
  }

  async outcome(fp: string): Promise<Outcome | undefined> {
    const raw = await this.redis.hget(this.keys.outcomes, fp);
    return raw ? (JSON.parse(raw) as Outcome) : undefined;
  }

  async markFinished(now = new Date()): Promise<void> {
    await this.redis.hsetnx(this.keys.meta, 'finished_at', now.toISOString());
  }

  async state(): Promise<RunState> {
    const meta = await this.redis.hgetall(this.keys.meta);
    const num = (k: string): number => Number(meta[k] ?? 0);
    const counters = Object.fromEntries(COUNTERS.map((k) => [k, num(k)])) as unknown as RunCounters;
    const byStatus: Record<string, number> = {};
    const sources: string[] = [];
    for (const [k, v] of Object.entries(meta)) {
      if (k.startsWith('status:')) byStatus[k.slice(7)] = Number(v);
      if (k.startsWith('source:')) sources.push(k.slice(7));
    }
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

  outcomes(): AsyncIterable<Outcome> {
    return this.scanJson<Outcome>(this.keys.outcomes);
  }

  rejections(): AsyncIterable<Rejection> {
    return this.scanJson<Rejection>(this.keys.rejected);
  }

  duplicates(): AsyncIterable<Duplicate> {
    return this.scanJson<Duplicate>(this.keys.duplicates);
  }

  private async *scanJson<T>(key: string): AsyncIterable<T> {
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(key, cursor, 'COUNT', 1000);
      cursor = next;
      for (let i = 1; i < entries.length; i += 2) yield JSON.parse(entries[i] as string) as T;
    } while (cursor !== '0');
  }
}
