// A master of a real Redis Cluster (three masters, three replicas on loopback) killed with SIGKILL while a run
// is going: its replica takes over, nothing is lost, and every count is exact. The ledger's shards are on every
// master and the queue on one. Redis replicates asynchronously, so a master that dies may take with it writes it
// had acknowledged: jobs just added (the ledger holds their rows as queued), or a row's answer (its job completed
// on another master). Nothing waits for a replica: the ledger is the source of truth, and the reconcile pass
// (src/queue/reconcile.ts) queues again, at the end of the run, every row it holds as queued without an outcome
// and without a job. A failover then costs at most a few rows sent twice, as a kill -9 of a worker does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Cluster } from 'ioredis';
import { runMigration } from '../src/commands/run.js';
import { connectRedis, isCluster } from '../src/redis/connection.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { bullmqPrefix, QUEUES, RedisKeys, SHARDS } from '../src/redis/keys.js';
import { silentLogger } from '../src/logger.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { captureLog } from './support/logCapture.js';
import { startRedisCluster, type RedisClusterHandle } from './support/redisCluster.js';
import { until } from './support/until.js';

const HEADER = ['platform', 'app_user_id', 'fetch_token', 'product_id', 'price', 'currency'];

let cluster: RedisClusterHandle;
let redis: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster();
  const client = await connectRedis({ redisUrl: 'redis://127.0.0.1:6379', redisClusterNodes: cluster.seeds }, 10_000);
  if (!isCluster(client)) throw new Error('expected a Cluster connection');
  redis = client;
}, 180_000);

afterAll(async () => {
  redis?.disconnect();
  await cluster?.stop();
}, 60_000);

const hex = (): string => randomBytes(3).toString('hex');

describe('a master killed mid-run', () => {
  const fx = pipelineFixture('cluster-chaos', { rateLimitPerSecond: 1000, latencyMs: 1, seed: 11 });

  /**
   * Runs `n` rows with a plain prefix (queue on one master, ledger on all three), kills the master `pick` chooses
   * once a quarter of the rows are sent (the ingest is still going: the high-water mark holds it back), and
   * checks that every count is exact.
   */
  async function killedMidRun(name: string, firstToken: number, pick: (queueMaster: number, masters: number[]) => number): Promise<void> {
    await cluster.waitHealthy();
    const n = 3000;
    const concurrency = 16;
    const plan = Array.from({ length: n }, (_, i) => [i % 2 ? 'ios' : 'android', `${name}-user-${i % 700}`, token(firstToken + i), 'pro.monthly', '4.99', 'EUR']);
    const source = await writeCsv(fx.dir, `${name}.csv`, HEADER, plan);
    const prefix = `t-chaos-${name}-${hex()}`;
    const config = testConfig(prefix, fx.sandbox.url, {
      redisClusterNodes: cluster.seeds,
      ratePerSecond: 300,
      concurrency,
      highWaterMark: 300,
      ingestChunkSize: 100,
      lockDurationMs: 3000,
      stalledIntervalMs: 1000,
      userLockMs: 5000,
      logLevel: 'warn',
    });
    const { logger, lines } = captureLog('warn');
    const before = fx.sandbox.stats().receiptPosts;
    const running = runMigration({ config, logger, sources: [source], runId: name, outDir: join(fx.dir, `${name}-report`) });
    running.catch(() => undefined);
    await until('a quarter of the rows sent', () => fx.sandbox.stats().receiptPosts.total - before.total >= n / 4, { timeoutMs: 90_000, everyMs: 20 });
    const queueMaster = await cluster.masterOf(`${bullmqPrefix(prefix, true)}:${QUEUES.receipts}:meta`);
    const victim = pick(queueMaster, await cluster.masters());
    const shardsThere: number[] = [];
    const keys = new RedisKeys(prefix);
    for (let s = 0; s < SHARDS; s++) if ((await cluster.masterOf(keys.runShard(name, s).counters)) === victim) shardsThere.push(s);
    expect(shardsThere.length).toBeGreaterThan(0); // every master holds ledger shards of the run
    const { promoted } = await cluster.killMaster(victim);
    try {
      const result = await running;
      const s = result.summary;
      const after = fx.sandbox.stats().receiptPosts;
      const resent = after.total - before.total - n;
      console.log(
        `${name}: master ${victim}${victim === queueMaster ? ' (the queue’s)' : ''} with ledger shards ${shardsThere.join(',')} killed mid-run, replica ${promoted} promoted: ${n} rows exact, ${resent} sent twice`,
      );
      const said = new Map<string, number>();
      for (const l of lines) said.set(`${l.level} ${l.msg} ${l.err?.message ?? ''}`, (said.get(`${l.level} ${l.msg} ${l.err?.message ?? ''}`) ?? 0) + 1);
      console.log(`${name}: the logs said\n${[...said].map(([m, k]) => `  ${k} × ${m.slice(0, 300)}`).join('\n')}`);
      expect(result.exitCode).toBe(0);
      expect(s.status).toBe('complete');
      expect([s.rows_read, s.rows_queued, s.rows_succeeded, s.rows_failed, s.rows_pending]).toEqual([n, n, n, 0, 0]);
      // Every receipt reached the API. Sent twice: at most the rows in flight when the master died (the failover
      // outlasts their 3 s BullMQ locks, so the new master hands them out again), and rows whose answer the dead
      // master took with it, queued again by the reconcile pass: at most one per worker slot each.
      expect(after.distinct - before.distinct).toBe(n);
      expect(resent).toBeLessThanOrEqual(2 * concurrency);
      expect((await readCsvFile(result.files.succeeded)).length).toBe(n);
      // The same from a fresh connection, as `report` elsewhere would read it.
      const state = await new RunLedger(redis, prefix, name).state();
      expect([state.rows_read, state.rows_queued, state.rows_succeeded, state.rows_failed, state.rows_pending]).toEqual([n, n, n, 0, 0]);
      // A job whose lock the failover took is one warning line, never an error with a stack trace.
      const lostJob = /Missing lock for job|Lock mismatch for job|Missing key for job|is not in the active state|could not renew lock for job/;
      expect(lines.filter((l) => l.level >= 50 && lostJob.test(l.err?.message ?? l.msg))).toEqual([]);
      for (const line of lines.filter((l) => /job lock lost/.test(l.msg))) {
        expect(line.level).toBe(40);
        expect(line.err).toBeUndefined();
      }
    } finally {
      // the next case needs three masters with a replica each
      await cluster.restartNode(victim);
    }
  }

  it('the master of the queue (and of some ledger shards): its replica takes over, nothing is lost, every count is exact', async () => {
    await killedMidRun('queue', 300_000, (queueMaster) => queueMaster);
  }, 300_000);

  it('a master of ledger shards only: its replica takes over, nothing is lost, every count is exact', async () => {
    await killedMidRun('ledger', 400_000, (queueMaster, masters) => masters.find((m) => m !== queueMaster) as number);
  }, 300_000);

  it('with a one-hash-tag prefix (the whole run on one master): its replica takes over, nothing is lost, every count is exact', async () => {
    await cluster.waitHealthy();
    const n = 4000;
    const concurrency = 16;
    const plan = Array.from({ length: n }, (_, i) => [i % 2 ? 'ios' : 'android', `k-user-${i % 1000}`, token(100_000 + i), 'pro.monthly', '4.99', 'EUR']);
    const source = await writeCsv(fx.dir, 'kill.csv', HEADER, plan);
    const prefix = `{t-clkill-${hex()}}`;
    const config = testConfig(prefix, fx.sandbox.url, { redisClusterNodes: cluster.seeds, ratePerSecond: 400, concurrency, lockDurationMs: 3000, stalledIntervalMs: 1000 });
    const before = fx.sandbox.stats().receiptPosts.total;
    const running = runMigration({ config, logger: silentLogger(), sources: [source], runId: 'kill', outDir: join(fx.dir, 'kill-report') });
    running.catch(() => undefined);
    // mid-run: a fifth of the rows sent
    await until('a fifth of the rows sent', () => fx.sandbox.stats().receiptPosts.total - before >= n / 5, { timeoutMs: 60_000, everyMs: 20 });
    // the master of the run's one slot (queue, run meta, locks, pacer) dies; the ledger's shards are elsewhere too
    const meta = new RedisKeys(prefix).run('kill').meta;
    const master = await cluster.masterOf(`${prefix}:${QUEUES.receipts}:meta`);
    const { promoted } = await cluster.killMaster(master);
    try {
      expect(await cluster.masterOf(`${prefix}:${QUEUES.receipts}:meta`)).toBe(promoted);

      const result = await running;
      const s = result.summary;
      expect(result.exitCode).toBe(0);
      expect(s.status).toBe('complete');
      expect([s.rows_read, s.rows_queued, s.rows_succeeded, s.rows_failed, s.rows_pending]).toEqual([n, n, n, 0, 0]);
      const posts = fx.sandbox.stats().receiptPosts;
      // Every receipt reached the API. Sent twice: the rows in flight when the master died (the failover, ~4 s,
      // outlasts their 3 s BullMQ locks, so the new master hands them out again: at most one per worker slot),
      // plus any row whose answer the dead master took with it (queued again by the reconcile pass). The ledger
      // counts each row once regardless.
      expect(posts.distinct).toBeGreaterThanOrEqual(n);
      console.log(`master ${master} killed mid-run, replica ${promoted} promoted: ${n} rows exact, ${posts.total - before - n} sent twice`);
      expect(posts.total - before - n).toBeLessThanOrEqual(2 * concurrency);
      expect((await readCsvFile(result.files.succeeded)).length).toBe(n);
      expect(await redis.exists(meta)).toBe(1);
    } finally {
      await cluster.restartNode(master);
    }
  }, 300_000);
});
