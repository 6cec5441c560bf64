// `run` end to end on a real Redis Cluster (three masters, three replicas on loopback): CSV → ingester →
// BullMQ → workers → sandbox → ledger → report, with every connection a Cluster connection from
// REDIS_CLUSTER_NODES. The chaos cases (a master killed mid-run) are in clusterChaos.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { runMigration } from '../src/commands/run.js';
import { connectRedis, type RedisClient } from '../src/redis/connection.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { bullmqPrefix, keySlot, QUEUES, RedisKeys, SHARDS } from '../src/redis/keys.js';
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

/** `n` rows of ~n/4 users, tokens from `first` on; every 10th row is refused by the store (7103). */
function rows(n: number, first = 0): { rows: string[][]; invalid: number } {
  const out: string[][] = [];
  let invalid = 0;
  for (let i = 0; i < n; i++) {
    const bad = i % 10 === 3;
    if (bad) invalid++;
    out.push([i % 2 ? 'ios' : 'android', `user-${first}-${i % Math.max(1, Math.floor(n / 4))}`, token(first + i, bad ? 'invalid' : ''), 'pro.monthly', '4.99', 'EUR']);
  }
  return { rows: out, invalid };
}

/** Keys under `pattern` on one node (a master holds only its own slots' keys). */
async function keysOn(port: number, pattern: string): Promise<string[]> {
  const node = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
  try {
    await node.connect();
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return found;
  } finally {
    node.disconnect();
  }
}

describe('run on a Redis Cluster', () => {
  const fx = pipelineFixture('cluster-run', { rateLimitPerSecond: 1000, latencyMs: 1, seed: 7 });

  it('with a plain prefix: every row gets exactly one outcome, the report adds up, and the run is spread over every master', async () => {
    const n = 1200;
    const plan = rows(n, 50_000);
    const source = await writeCsv(fx.dir, 'plain.csv', HEADER, plan.rows);
    const prefix = `t-clplain-${randomBytes(3).toString('hex')}`;
    const config = testConfig(prefix, fx.sandbox.url, { redisClusterNodes: cluster.seeds, ratePerSecond: 800, concurrency: 16 });
    const before = fx.sandbox.stats().receiptPosts;
    const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'p1', outDir: join(fx.dir, 'plain-report') });
    const s = result.summary;
    expect(result.exitCode).toBe(1); // the store refused some rows
    expect(s.status).toBe('complete');
    expect([s.rows_read, s.rows_queued, s.rows_succeeded, s.rows_failed, s.rows_pending]).toEqual([n, n, n - plan.invalid, plan.invalid, 0]);
    const after = fx.sandbox.stats().receiptPosts;
    expect(after.distinct - before.distinct).toBe(n);
    expect(after.total - before.total).toBe(n); // no fault injected: each row sent exactly once
    expect(after.maxSuccessfulPerReceipt).toBe(1);
    expect((await readCsvFile(result.files.succeeded)).length).toBe(n - plan.invalid);
    expect((await readCsvFile(result.files.failed)).length).toBe(plan.invalid);

    // The same counts read back from the cluster by another connection (as `report` on another machine would).
    const redis: RedisClient = await connectRedis(config);
    try {
      const state = await new RunLedger(redis, prefix, 'p1').state();
      expect([state.rows_read, state.rows_succeeded, state.rows_failed, state.rows_pending]).toEqual([n, n - plan.invalid, plan.invalid, 0]);
    } finally {
      redis.disconnect();
    }

    // Where the data is: the queue on the master of the prefix's tag ({prefix}), the ledger's 16 shards in 16
    // slots (as CLUSTER KEYSLOT computes them), on all three masters, each master holding ledger keys of the run.
    const keys = new RedisKeys(prefix);
    const queuePrefix = bullmqPrefix(prefix, true);
    expect(queuePrefix).toBe(`{${prefix}}`);
    const masters = await cluster.masters();
    expect(masters).toHaveLength(3);
    const queueMaster = await cluster.masterOf(`${queuePrefix}:${QUEUES.receipts}:meta`);
    expect((await keysOn(queueMaster, `${queuePrefix}:*`)).length).toBeGreaterThan(0);
    for (const port of masters.filter((p) => p !== queueMaster)) expect(await keysOn(port, `${queuePrefix}:*`)).toEqual([]);
    const shardMasters = new Map<number, number>();
    const node = new Redis({ host: '127.0.0.1', port: masters[0], lazyConnect: true });
    try {
      await node.connect();
      const slots = new Set<number>();
      for (let shard = 0; shard < SHARDS; shard++) {
        const counters = keys.runShard('p1', shard).counters;
        const slot = Number(await node.cluster('KEYSLOT', counters));
        expect(slot).toBe(keySlot(counters));
        expect(Number(await node.cluster('KEYSLOT', `${keys.runShard('p1', shard).buckets}0`))).toBe(slot);
        expect(Number(await node.cluster('KEYSLOT', keys.index(shard).state))).toBe(slot);
        slots.add(slot);
        shardMasters.set(shard, await cluster.masterOf(counters));
      }
      expect(slots.size).toBe(SHARDS);
    } finally {
      node.disconnect();
    }
    expect(new Set(shardMasters.values()).size).toBe(3);
    const perMaster: string[] = [];
    for (const port of masters) {
      const ledgerKeys = (await keysOn(port, `${keys.base}:{*`)).filter((k) => k.includes(':run:p1:'));
      perMaster.push(
        `${port}: ${ledgerKeys.length} ledger keys (shards ${[...shardMasters]
          .filter(([, m]) => m === port)
          .map(([s]) => s)
          .join(',')})`,
      );
      expect(ledgerKeys.length).toBeGreaterThan(0);
      // every ledger key a master holds belongs to a shard that master serves
      for (const key of ledgerKeys) expect(await cluster.masterOf(key)).toBe(port);
    }
    console.log(`run p1 on the cluster (queue on ${queueMaster}):\n  ${perMaster.join('\n  ')}`);
  }, 180_000);

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
    const meta = new RedisKeys(prefix).run('cl1').meta;
    const onCluster = await connectRedis(config);
    const single = new Redis(redisUrl());
    try {
      expect(await onCluster.exists(meta)).toBe(1);
      expect(await single.exists(meta)).toBe(0);
    } finally {
      onCluster.disconnect();
      single.disconnect();
    }
  }, 180_000);
});
