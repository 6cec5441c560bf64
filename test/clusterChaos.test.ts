// A master of a real Redis Cluster (three masters, three replicas on loopback) killed with SIGKILL while a run
// is going: its replica takes over, nothing is lost, and every count is exact. The ledger's shards are on every
// master and the queue on one, so a write one master acknowledged but had not yet passed to its replica could be
// lost while a later write on another master, which depends on it, survives (a row's answer and its job's
// completion): src/redis/replication.ts makes such writes wait for a replica. Its barrier is tested first, on a
// write Redis is told not to replicate (so that the loss it prevents is certain, not a matter of timing).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import type { Cluster } from 'ioredis';
import { Redis } from 'ioredis';
import { runMigration } from '../src/commands/run.js';
import { connectRedis, isCluster } from '../src/redis/connection.js';
import { ReplicationBarrier } from '../src/redis/replication.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { bullmqPrefix, QUEUES, RedisKeys, SHARDS } from '../src/redis/keys.js';
import { createLogger, silentLogger } from '../src/logger.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { startRedisCluster, type RedisClusterHandle } from './support/redisCluster.js';

const HEADER = ['platform', 'app_user_id', 'fetch_token', 'product_id', 'price', 'currency'];
/** A SET that the master keeps to itself (Redis 7 scripts may switch replication off): lost if the master dies. */
const SET_UNREPLICATED = "redis.set_repl(redis.REPL_NONE); return redis.call('SET', KEYS[1], ARGV[1])";

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

/** Kills the master on `port` and, once its replica has taken over, brings it back as a replica. */
async function failover(port: number): Promise<number> {
  const { promoted } = await cluster.killMaster(port);
  return promoted;
}

describe('the replication barrier (src/redis/replication.ts)', () => {
  it('a write its master never replicated is lost in a failover, unless made through the barrier, which makes it again', async () => {
    // Without the barrier: the master acknowledges, dies, and its replica never had the write.
    const lostKey = `t-repl-${hex()}:lost`;
    const lostMaster = await cluster.masterOf(lostKey);
    expect(await redis.eval(SET_UNREPLICATED, 1, lostKey, 'v')).toBe('OK');
    try {
      await failover(lostMaster);
      expect(await redis.get(lostKey)).toBeNull();
    } finally {
      await cluster.restartNode(lostMaster);
    }

    // Through the barrier: the master changed between the write and its WAIT, so the write is made again.
    const key = `t-repl-${hex()}:kept`;
    const master = await cluster.masterOf(key);
    const barrier = new ReplicationBarrier(redis, 300);
    const failovers: string[] = [];
    barrier.on('failover', (m) => failovers.push(m));
    let replays = 0;
    let killed = false;
    try {
      const result = await barrier.durable(
        key,
        async () => {
          const ok = await redis.eval(SET_UNREPLICATED, 1, key, 'v');
          killed = true;
          await failover(master);
          return ok;
        },
        async () => {
          replays++;
          await redis.set(key, 'v');
        },
      );
      expect(result).toBe('OK');
      expect(replays).toBe(1);
      expect(failovers).toEqual([`127.0.0.1:${master}`]);
      expect(await redis.get(key)).toBe('v');
    } finally {
      if (killed) await cluster.restartNode(master);
    }
  }, 240_000);

  it('a replica that does not answer in time: the write goes on, "lagging" is said once, and "recovered" when it answers again', async () => {
    const key = `t-repl-${hex()}:lag`;
    const master = await cluster.masterOf(key);
    const [replica] = await cluster.replicasOf(master);
    expect(replica).toBeDefined();
    const barrier = new ReplicationBarrier(redis, 200);
    const events: string[] = [];
    barrier.on('lagging', (m) => events.push(`lagging ${m}`)).on('recovered', (m) => events.push(`recovered ${m}`));
    expect(await barrier.durable(key, () => redis.set(key, '1'))).toBe('OK');
    expect(events).toEqual([]);
    // The replica sleeps for a second (shorter than the cluster's node timeout: no failover).
    const sleeper = new Redis({ host: '127.0.0.1', port: replica, lazyConnect: true, maxRetriesPerRequest: 0 });
    await sleeper.connect();
    try {
      const sleeping = sleeper.call('DEBUG', 'SLEEP', '1');
      await new Promise((r) => setTimeout(r, 50));
      const slow = await Promise.all([barrier.durable(key, () => redis.set(key, '2')), barrier.durable(key, () => redis.incr(`${key}:n`))]);
      expect(slow).toEqual(['OK', 1]);
      expect(events).toEqual([`lagging 127.0.0.1:${master}`]);
      await sleeping;
    } finally {
      sleeper.disconnect();
    }
    expect(await barrier.confirm(key, `127.0.0.1:${master}`)).toBe('replicated');
    expect(events).toEqual([`lagging 127.0.0.1:${master}`, `recovered 127.0.0.1:${master}`]);
  }, 60_000);
});

interface LogLine {
  level: number;
  msg: string;
  err?: { message?: string; stack?: string };
}

/** A logger at warn that keeps its lines, to check what a failover prints. */
function memoryLogger(): { logger: ReturnType<typeof createLogger>; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: createLogger('warn', sink), lines };
}

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
    const { logger, lines } = memoryLogger();
    const before = fx.sandbox.stats().receiptPosts;
    const running = runMigration({ config, logger, sources: [source], runId: name, outDir: join(fx.dir, `${name}-report`) });
    running.catch(() => undefined);
    const deadline = Date.now() + 90_000;
    while (fx.sandbox.stats().receiptPosts.total - before.total < n / 4) {
      if (Date.now() > deadline) throw new Error('the run did not get going');
      await new Promise((r) => setTimeout(r, 20));
    }
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
      // outlasts their 3 s BullMQ locks, so the new master hands them out again), and rows whose answer was made
      // again after the failover: at most one per worker slot each.
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
    const deadline = Date.now() + 60_000;
    while (fx.sandbox.stats().receiptPosts.total - before < n / 5) {
      if (Date.now() > deadline) throw new Error('the run did not get going');
      await new Promise((r) => setTimeout(r, 20));
    }
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
      // plus any row whose answer was made again on the new master. The ledger counts each row once regardless.
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
