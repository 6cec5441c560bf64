// Metrics read from Redis at scrape time, for `serve`: what every process together has done, not what one
// process saw. Queue depths per state, each recent run's counters, and the shared request rate.
import { Gauge, type Registry } from 'prom-client';
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connection.js';
import { RedisKeys } from '../redis/keys.js';
import { RunLedger } from '../ledger/runLedger.js';
import { readRateState } from '../workers/rate/sharedRate.js';

const STATES = ['wait', 'active', 'delayed', 'prioritized', 'failed'] as const;
/** Runs shown: the most recent ones (a long-lived Redis may hold hundreds). */
const RECENT_RUNS = 20;

export function registerQueueMetrics(registry: Registry, deps: { redis: RedisClient; prefix: string; queues: Queue[] }): void {
  const registers = [registry];
  new Gauge({
    name: 'rcm_queue_jobs',
    help: 'Jobs in each queue by state',
    labelNames: ['queue', 'state'],
    registers,
    async collect() {
      for (const queue of deps.queues) {
        const counts = await queue.getJobCounts(...STATES);
        for (const state of STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
      }
    },
  });
  new Gauge({
    name: 'rcm_run_rows',
    help: 'Rows of each recent run by outcome (pending: queued without an outcome yet)',
    labelNames: ['run', 'outcome'],
    registers,
    async collect() {
      this.reset();
      for (const run of await deps.redis.zrevrange(new RedisKeys(deps.prefix).runs, 0, RECENT_RUNS - 1)) {
        const s = await new RunLedger(deps.redis, deps.prefix, run).state();
        const values: Record<string, number> = {
          read: s.rows_read,
          succeeded: s.rows_succeeded,
          failed: s.rows_failed,
          rejected: s.rows_rejected,
          duplicate: s.rows_duplicate,
          already_migrated: s.rows_already_migrated,
          pending: s.rows_pending,
        };
        for (const [outcome, n] of Object.entries(values)) this.set({ run, outcome }, n);
      }
    },
  });
  new Gauge({
    name: 'rcm_shared_request_rate_per_second',
    help: 'The request rate all workers share: the limit learned from 429s and announced limits (requests/s)',
    registers,
    async collect() {
      const learned = await readRateState(deps.redis, new RedisKeys(deps.prefix));
      if (learned) this.set(learned.rate);
    },
  });
}
