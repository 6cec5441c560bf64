// `run` end to end on a real Redis Cluster (three masters, three replicas on loopback): CSV → ingester →
// BullMQ → workers → sandbox → ledger → report, with every connection a Cluster connection from
// REDIS_CLUSTER_NODES.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { runMigration } from '../src/commands/run.js';
import { connectRedis } from '../src/redis/connection.js';
import { silentLogger } from '../src/logger.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { redisUrl } from './support/redis.js';
import { startRedisCluster, type RedisClusterHandle } from './support/redisCluster.js';

const HEADER = ['platform', 'app_user_id', 'fetch_token', 'product_id', 'price', 'currency'];

let cluster: RedisClusterHandle;

beforeAll(async () => {
  cluster = await startRedisCluster();
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

/** `n` rows of ~n/4 users; every 10th row is refused by the store (7103). */
function rows(n: number): { rows: string[][]; invalid: number } {
  const out: string[][] = [];
  let invalid = 0;
  for (let i = 0; i < n; i++) {
    const bad = i % 10 === 3;
    if (bad) invalid++;
    out.push([i % 2 ? 'ios' : 'android', `user-${i % Math.max(1, Math.floor(n / 4))}`, token(i, bad ? 'invalid' : ''), 'pro.monthly', '4.99', 'EUR']);
  }
  return { rows: out, invalid };
}

describe('run on a Redis Cluster', () => {
  const fx = pipelineFixture('cluster-run', { rateLimitPerSecond: 1000, latencyMs: 1, seed: 7 });

  it('with a one-hash-tag prefix, every row gets exactly one outcome and the report adds up', async () => {
    const plan = rows(800);
    const source = await writeCsv(fx.dir, 'receipts.csv', HEADER, plan.rows);
    const prefix = `{t-clrun-${randomBytes(3).toString('hex')}}`;
    const config = testConfig(prefix, fx.sandbox.url, { redisClusterNodes: cluster.seeds, ratePerSecond: 800, concurrency: 16 });
    const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'cl1', outDir: join(fx.dir, 'report') });
    const s = result.summary;
    expect(s.status).toBe('complete');
    expect(s.rows_read).toBe(800);
    expect(s.rows_queued).toBe(800);
    expect(s.rows_succeeded).toBe(800 - plan.invalid);
    expect(s.rows_failed).toBe(plan.invalid);
    expect(s.rows_pending).toBe(0);
    expect(fx.sandbox.stats().receiptPosts.maxSuccessfulPerReceipt).toBe(1);
    expect(fx.sandbox.stats().overlaps).toBe(0);
    expect((await readCsvFile(result.files.succeeded)).length).toBe(800 - plan.invalid);
    expect((await readCsvFile(result.files.failed)).length).toBe(plan.invalid);
    // the run lives on the cluster, not on the single Redis that REDIS_URL names
    const onCluster = await connectRedis(config);
    const single = new Redis(redisUrl());
    try {
      expect(await onCluster.exists(`${prefix}:run:cl1:meta`)).toBe(1);
      expect(await single.exists(`${prefix}:run:cl1:meta`)).toBe(0);
    } finally {
      onCluster.disconnect();
      single.disconnect();
    }
  }, 180_000);

  it('a master killed mid-run: its replica takes over, nothing is lost, every count is exact', async () => {
    const n = 4000;
    const concurrency = 16;
    const plan = Array.from({ length: n }, (_, i) => [i % 2 ? 'ios' : 'android', `k-user-${i % 1000}`, token(100_000 + i), 'pro.monthly', '4.99', 'EUR']);
    const source = await writeCsv(fx.dir, 'kill.csv', HEADER, plan);
    const prefix = `{t-clkill-${randomBytes(3).toString('hex')}}`;
    const config = testConfig(prefix, fx.sandbox.url, { redisClusterNodes: cluster.seeds, ratePerSecond: 400, concurrency, lockDurationMs: 3000, stalledIntervalMs: 1000 });
    const before = fx.sandbox.stats().receiptPosts.total;
    const running = runMigration({ config, logger: silentLogger(), sources: [source], runId: 'kill', outDir: join(fx.dir, 'kill-report') });
    running.catch(() => undefined);
    // mid-run: a fifth of the rows sent
    const deadline = Date.now() + 60_000;
    while (fx.sandbox.stats().receiptPosts.total - before < n / 5) {
      if (Date.now() > deadline) throw new Error('the run did not get going');
      await new Promise((r) => setTimeout(r, 20));
    }
    // the master of the run's one slot (queue, ledger, locks, pacer) dies
    const master = await cluster.masterOf(`${prefix}:run:kill:meta`);
    const { promoted } = await cluster.killMaster(master);
    expect(await cluster.masterOf(`${prefix}:run:kill:meta`)).toBe(promoted);

    const result = await running;
    const s = result.summary;
    expect(result.exitCode).toBe(0);
    expect(s.status).toBe('complete');
    expect([s.rows_read, s.rows_queued, s.rows_succeeded, s.rows_failed, s.rows_pending]).toEqual([n, n, n, 0, 0]);
    const posts = fx.sandbox.stats().receiptPosts;
    // Every receipt reached the API. Sent twice: the rows in flight when the master died (the failover, ~4 s,
    // outlasts their 3 s BullMQ locks, so the new master hands them out again: at most one per worker slot),
    // plus any row whose completion the dead master had acknowledged but not yet passed to its replica (the
    // replication lag on loopback: a few ms' worth at most). The ledger counts each row once regardless.
    expect(posts.distinct).toBeGreaterThanOrEqual(n);
    console.log(`master ${master} killed mid-run, replica ${promoted} promoted: ${n} rows exact, ${posts.total - before - n} sent twice`);
    expect(posts.total - before - n).toBeLessThanOrEqual(2 * concurrency);
    expect((await readCsvFile(result.files.succeeded)).length).toBe(n);
    await cluster.restartNode(master);
  }, 240_000);
});
