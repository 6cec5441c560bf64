// The ledger of a plan (`rc-migrate plan`): a run ledger under a plan id of its own, into which the plan's rows
// are admitted exactly as a run would admit them, so that duplicates and conflicts within the sources are found
// in Redis (with bounded memory in the process, whatever the size of the file) and the cross-run index is
// consulted for conflicts, already-migrated and changed rows. It is never a run: it is not listed among the runs,
// takes no run number, and nothing of it is queued or sent. Its keys are deleted when the plan ends (drop);
// a plan that was killed leaves them in `plans`, where the next plan sweeps them after a day.
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/connection.js';
import { RedisKeys, SHARDS } from '../redis/keys.js';
import { bucketCount } from './rowTable.js';
import { RunLedger } from './runLedger.js';

/** A plan older than this whose keys are still there was killed: the next plan deletes them. */
const STALE_PLAN_MS = 24 * 3600_000;
const DELETE_BATCH = 500;

export function newPlanId(now = new Date()): string {
  return `plan-${now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-')}-${randomBytes(3).toString('hex')}`;
}

export class PlanLedger extends RunLedger {
  /** Marks the plan's ledger as in use (so a killed plan's keys are found) without making it a run. */
  override async beginIngest(sources: string[], now = new Date()): Promise<void> {
    await this.meta.beginPlan(sources, now);
  }

  /** Deletes every key of the plan's ledger. */
  async drop(): Promise<void> {
    await dropLedgerKeys(this.run.redis, this.run.names, this.runId);
    await this.run.redis.zrem(this.run.names.plans, this.runId);
  }
}

/** Deletes the keys of plans started more than a day ago that are still there (their process was killed). */
export async function sweepStalePlans(redis: RedisClient, prefix: string, now = Date.now()): Promise<number> {
  const names = new RedisKeys(prefix);
  const stale = await redis.zrangebyscore(names.plans, 0, now - STALE_PLAN_MS);
  for (const planId of stale) {
    await dropLedgerKeys(redis, names, planId);
    await redis.zrem(names.plans, planId);
  }
  return stale.length;
}

/**
 * Every key of a ledger: its own keys, and in each shard the fixed keys and the row table's buckets (as many as
 * the table's state says it has, redis/scripts/includes/table.lua). Keys of one shard share a hash tag, so each
 * batch is one slot on a Redis Cluster.
 */
async function dropLedgerKeys(redis: RedisClient, names: RedisKeys, runId: string): Promise<void> {
  const own: Record<string, string> = { ...names.run(runId) };
  for (const key of Object.values(own)) await redis.del(key);
  for (let s = 0; s < SHARDS; s++) {
    const k = names.runShard(runId, s);
    // the row table's buckets, the purchase claims' (a plan makes none, a run's looked-up rows do) and the
    // superseded rows'
    for (const table of [
      { state: k.counters, buckets: k.buckets },
      { state: k.claims, buckets: k.claimBuckets },
      { state: k.superseded, buckets: k.supersededBuckets },
    ]) {
      const buckets = await bucketCount(redis, table);
      for (let from = 0; from < buckets; from += DELETE_BATCH) {
        const batch = Array.from({ length: Math.min(DELETE_BATCH, buckets - from) }, (_, i) => `${table.buckets}${from + i}`);
        await redis.del(...batch);
      }
    }
    const { buckets: _prefix, claimBuckets: _claimPrefix, supersededBuckets: _supersededPrefix, ...fixed }: Record<string, string> = { ...k };
    await redis.del(...Object.values(fixed));
  }
}
