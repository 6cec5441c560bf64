// A run's statistics: its counters (summed over the shards), the requests it sent (by HTTP status, over time,
// by latency), the rate the workers paced at, and its most recent failures. A final answer's request is counted
// with the answer (ledger/outcomes.ts, in the same script call); a request that brought no final answer is
// counted here.
import type { RunCounters, RunState } from '../types.js';
import { INGEST_STATE, latencyField, META, parseTimelineField, TIMELINE, timelineField } from '../redis/keys.js';
import type { RunContext } from './runContext.js';
import type { RunNumbering } from './runNumbering.js';
import type { RequestFields } from './scriptCalls.js';
import { LATENCY_BUCKETS_MS, latencyBucket, timelineBucket, type TimelinePoint } from './timeline.js';

/** Failures each shard keeps in its list of recent errors (recordAnswer-7.lua trims it to this). */
export const RECENT_ERRORS = 20;

/** A failure as the `status` command shows it. */
export interface RecentError {
  at: string;
  src: string;
  line: number;
  reason: string;
  message: string;
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
  rows_superseded: META.rowsSuperseded,
  requests_sent: META.requestsSent,
  retries: META.retries,
};

/** The counter and timeline fields a request adds one to. */
export function requestFields(request: RequestSample): RequestFields {
  const bucket = timelineBucket(request.at ?? Date.now());
  return {
    status: META.status(request.status),
    timeline: timelineField(bucket, TIMELINE.requests),
    latency: latencyField(latencyBucket(request.durationMs)),
    ...(request.rateLimited ? { rateLimited: timelineField(bucket, TIMELINE.rateLimited) } : {}),
  };
}

export class RunStatistics {
  constructor(
    private readonly run: RunContext,
    private readonly numbering: RunNumbering,
  ) {}

  /** Counts one HTTP request that brought no final answer (a retry follows), in one round trip. */
  async countRequest(request: RequestSample & { fp?: string }): Promise<void> {
    const k = this.run.shardOfFp(request.fp);
    const f = requestFields(request);
    const p = this.run.redis
      .pipeline()
      .hincrby(k.counters, META.requestsSent, 1)
      .hincrby(k.counters, f.status, 1)
      .hincrby(k.timeline, f.timeline, 1)
      .hincrby(k.latency, f.latency, 1);
    if (f.rateLimited) p.hincrby(k.timeline, f.rateLimited, 1);
    await p.exec();
  }

  /**
   * The request rate the workers pace this run's requests at (workers/rateController.ts), for the report's rate
   * over time against its 429s: one value per timeline bucket, the last written (in the first shard only).
   */
  async recordRate(ratePerSecond: number, at = Date.now()): Promise<void> {
    await this.run.redis.hset(this.run.shard(0).timeline, timelineField(timelineBucket(at), TIMELINE.rate), String(Math.round(ratePerSecond * 100) / 100));
  }

  /** The lookups' rate (scope 'apple', workers/appleLookup.ts) in the same way, beside RevenueCat's. */
  async recordLookupRate(ratePerSecond: number, at = Date.now()): Promise<void> {
    await this.run.redis.hset(this.run.shard(0).timeline, timelineField(timelineBucket(at), TIMELINE.lookupRate), String(Math.round(ratePerSecond * 100) / 100));
  }

  /** Marks the run as one with lookups (once per worker process and run: one field in its meta hash). */
  async markLookups(): Promise<void> {
    await this.run.redis.hset(this.run.keys.meta, META.lookups, '1');
  }

  /** Whether a row of the run was looked up (one HEXISTS: the progress asks every second). */
  async hadLookups(): Promise<boolean> {
    return (await this.run.redis.hexists(this.run.keys.meta, META.lookups)) === 1;
  }

  /** Counts one more retry pass (one that re-opened rows). */
  async countRetry(): Promise<void> {
    await this.run.redis.hincrby(this.run.keys.meta, META.retries, 1);
  }

  /** The run's timeline, in buckets of TIMELINE_BUCKET_SECONDS, oldest first (summed over the shards). */
  async timeline(): Promise<TimelinePoint[]> {
    const all = await Promise.all(this.run.shards.map((k) => this.run.redis.hgetall(k.timeline)));
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
        else if (kind === TIMELINE.lookupRate) point.lookupRate = Math.max(point.lookupRate ?? 0, n);
        points.set(point.t, point);
      }
    }
    return [...points.values()].sort((a, b) => a.t - b.t);
  }

  /** Request latency histogram: counts per LATENCY_BUCKETS_MS bound, plus the overflow bucket. */
  async latencyBuckets(): Promise<number[]> {
    const all = await Promise.all(this.run.shards.map((k) => this.run.redis.hgetall(k.latency)));
    return Array.from({ length: LATENCY_BUCKETS_MS.length + 1 }, (_, i) => all.reduce((sum, raw) => sum + Number(raw[latencyField(i)] ?? 0), 0));
  }

  /** The most recent failures, newest first (at most RECENT_ERRORS). */
  async recentErrors(): Promise<RecentError[]> {
    const all = await Promise.all(this.run.shards.map((k) => this.run.redis.lrange(k.errors, 0, -1)));
    return all
      .flat()
      .map((e) => JSON.parse(e) as RecentError)
      .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0))
      .slice(0, RECENT_ERRORS);
  }

  /** The run's counters (summed over its shards) and state. */
  async state(): Promise<RunState> {
    const { redis, keys, runId } = this.run;
    const [meta, ...shards] = await Promise.all([redis.hgetall(keys.meta), ...this.run.shards.map((k) => redis.hgetall(k.counters))]);
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
    const sources = await this.numbering.sources();
    const ingest = (meta[META.ingest] ?? 'pending') as RunState['ingest'];
    // The one definition of pending: queued rows without an outcome (summary, status and metrics read it here).
    const receipts = meta[META.receipts];
    const pending = Math.max(0, counters.rows_queued - counters.rows_succeeded - counters.rows_failed);
    return {
      run_id: runId,
      started_at: meta[META.startedAt],
      finished_at: meta[META.finishedAt],
      ingest,
      sources,
      by_http_status: byStatus,
      ...counters,
      rows_pending: pending,
      complete: ingest === INGEST_STATE.done && pending === 0,
      ...(receipts !== undefined ? { receipts: JSON.parse(receipts) as RunState['receipts'] } : {}),
    };
  }
}
