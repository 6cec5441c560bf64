// A run's own facts in its meta hash: when it started and finished, whether an ingest is running, how far each
// source is ingested, and what a canary did (session/canary.ts decides; the ledger keeps it).
import { INGEST_STATE, META } from '../redis/keys.js';
import type { RunContext } from './runContext.js';
import type { RunNumbering } from './runNumbering.js';

/** What the run's meta keeps of a canary, for its report (until an ingest of the run reads every source). */
export interface CanaryRecord {
  limit: number;
  /** rows the canary queued to be sent */
  sent: number;
}

/** What a source was when it was ingested: enough to tell whether it changed since (ingest decides what). */
export type SourceStamp = Record<string, string | number>;

export class RunMeta {
  constructor(
    private readonly run: RunContext,
    private readonly numbering: RunNumbering,
  ) {}

  /** Creates the run if new (keeps the first start time) and marks an ingest as running. */
  async beginIngest(sources: readonly string[], now = new Date()): Promise<void> {
    const { redis, keys, names, runId } = this.run;
    const tx = redis.multi();
    tx.hsetnx(keys.meta, META.startedAt, now.toISOString());
    tx.hset(keys.meta, META.runId, runId, META.ingest, INGEST_STATE.running);
    tx.hdel(keys.meta, META.finishedAt);
    await tx.exec();
    await redis.zadd(names.runs, 'NX', now.getTime(), runId);
    await this.numbering.runNumber();
    for (const source of sources) await this.numbering.sourceId(source);
  }

  /** Marks a plan's ledger as in use (a run ledger that is never a run: not listed among the runs, no run number). */
  async beginPlan(sources: readonly string[], now = new Date()): Promise<void> {
    const { redis, keys, names, runId } = this.run;
    await redis.zadd(names.plans, now.getTime(), runId);
    await redis.hset(keys.meta, META.startedAt, now.toISOString(), META.runId, runId, META.ingest, INGEST_STATE.running);
    for (const source of sources) await this.numbering.sourceId(source);
  }

  async endIngest(): Promise<void> {
    await this.run.redis.hset(this.run.keys.meta, META.ingest, INGEST_STATE.done);
  }

  async markFinished(now = new Date()): Promise<void> {
    await this.run.redis.hsetnx(this.run.keys.meta, META.finishedAt, now.toISOString());
  }

  async exists(): Promise<boolean> {
    return (await this.run.redis.exists(this.run.keys.meta)) === 1;
  }

  /** Every row of `source` up to `line` is queued or accounted for: a restarted ingest may skip them. */
  async setProgress(source: string, line: number): Promise<void> {
    await this.run.redis.hset(this.run.keys.meta, META.progress(await this.numbering.sourceId(source)), line);
  }

  /** The line up to which `source` was ingested, 0 when never. */
  async progress(source: string): Promise<number> {
    return Number((await this.run.redis.hget(this.run.keys.meta, META.progress(await this.numbering.sourceId(source)))) ?? 0);
  }

  /**
   * Keeps what a source was when it was ingested (its size and mtime, or its ETag: whatever tells a changed source
   * from the one read), so that re-reading a row of it later (failed.csv, retry) can refuse a source that changed.
   * The first stamp stays: the rows in the ledger are those of the source as first read.
   */
  async saveSourceStamp(source: string, stamp: SourceStamp): Promise<void> {
    await this.run.redis.hsetnx(this.run.keys.meta, META.sourceStamp(await this.numbering.sourceId(source)), JSON.stringify(stamp));
  }

  /** What `source` was when it was first ingested, if that was noted. */
  async sourceStamp(source: string): Promise<SourceStamp | undefined> {
    const raw = await this.run.redis.hget(this.run.keys.meta, META.sourceStamp(await this.numbering.sourceId(source)));
    return raw ? (JSON.parse(raw) as SourceStamp) : undefined;
  }

  /** Keeps what a canary did (or forgets it: undefined), for the run's report. */
  async saveCanary(record: CanaryRecord | undefined): Promise<void> {
    const { redis, keys } = this.run;
    if (record) await redis.hset(keys.meta, META.canary, JSON.stringify(record));
    else await redis.hdel(keys.meta, META.canary);
  }

  async canary(): Promise<CanaryRecord | undefined> {
    const raw = await this.run.redis.hget(this.run.keys.meta, META.canary);
    return raw ? (JSON.parse(raw) as CanaryRecord) : undefined;
  }
}
