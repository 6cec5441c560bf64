// The tool on a real Redis Cluster: three masters and three replicas of redis-server on loopback
// (test/support/redisCluster.ts), reached through REDIS_CLUSTER_NODES like a user would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { ConfigError } from '../src/config.js';
import { connectRedis, isCluster, type RedisClient } from '../src/redis/connection.js';
import { enqueueRows, openReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { listSchedules, openRunsQueue, upsertSchedule } from '../src/schedule/scheduler.js';
import type { ReceiptJobData } from '../src/types.js';
import { redisUrl } from './support/redis.js';
import { startRedisCluster, type RedisClusterHandle } from './support/redisCluster.js';
import { until } from './support/until.js';

let cluster: RedisClusterHandle;
const open: RedisClient[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
}, 180_000);

afterAll(async () => {
  for (const c of open) c.disconnect();
  await cluster?.stop();
}, 60_000);

async function connectCluster(): Promise<Cluster> {
  const redis = await connectRedis({ redisUrl: 'redis://127.0.0.1:6379', redisClusterNodes: cluster.seeds }, 10_000);
  open.push(redis);
  if (!isCluster(redis)) throw new Error('expected a Cluster connection');
  return redis;
}

/** A BullMQ prefix as the tool derives it on a cluster: the user's prefix as a hash tag. */
const taggedPrefix = (name: string): string => `{t-${name}-${randomBytes(3).toString('hex')}}`;

function row(i: number): ReceiptJobData {
  const token = `token-${i}`;
  return {
    run: 'cl',
    fp: `fp${String(i).padStart(6, '0')}`,
    src: 'a.csv',
    line: i + 2,
    platform: 'android',
    body: { app_user_id: `user-${i}`, fetch_token: token, product_id: 'gold' },
    input: { app_user_id: `user-${i}`, token, product_id: 'gold' },
  };
}

describe('Redis Cluster (3 masters, 3 replicas, on loopback)', () => {
  it('is up: every node says cluster_state:ok and three masters serve the slots', async () => {
    expect(cluster.nodes).toHaveLength(6);
    for (const { port } of cluster.nodes) {
      expect(port).toBeGreaterThanOrEqual(7100);
      expect(port).toBeLessThanOrEqual(7199);
    }
    const masters = await cluster.masters();
    expect(masters).toHaveLength(3);
    // keys of different slots land on different masters, and one cluster connection reaches them all
    const redis = await connectCluster();
    const owners = new Set<number>();
    for (const key of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) {
      owners.add(await cluster.masterOf(key));
      await redis.set(`t-cluster-probe:${key}`, key);
      expect(await redis.get(`t-cluster-probe:${key}`)).toBe(key);
      await redis.del(`t-cluster-probe:${key}`);
    }
    expect(owners.size).toBeGreaterThan(1);
  });

  it('connectRedis fails fast with a message that names the nodes (never a password)', async () => {
    const message = async (target: Parameters<typeof connectRedis>[0]): Promise<string> => {
      const err = await connectRedis(target, 1000).then(
        (r) => {
          r.disconnect();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    };
    // nothing listens on the bus port of a node (port + 10000 speaks the cluster bus, not RESP): use a port
    // in the range that this cluster does not use and nothing answers on
    const unused = [...Array(100).keys()].map((i) => 7100 + i).find((p) => !cluster.nodes.some((n) => n.port === p)) as number;
    const down = await message({ redisUrl: 'redis://app:s3cret-pw@127.0.0.1:6379', redisClusterNodes: `127.0.0.1:${unused}` });
    expect(down).toContain(`cannot reach the Redis Cluster at 127.0.0.1:${unused}`);
    expect(down).not.toContain('s3cret-pw');

    // a single Redis named as cluster nodes
    const single = new URL(redisUrl());
    const notCluster = await message({ redisUrl: redisUrl(), redisClusterNodes: `${single.hostname}:${single.port || 6379}` });
    expect(notCluster).toMatch(/not a Redis Cluster: unset REDIS_CLUSTER_NODES/);

    // a cluster node given as REDIS_URL
    const node = cluster.nodes[0] as { port: number };
    const plain = await message({ redisUrl: `redis://127.0.0.1:${node.port}` });
    expect(plain).toMatch(/is a Redis Cluster node: set REDIS_CLUSTER_NODES/);
  });

  it('BullMQ: the receipts queue and a worker process every job when the prefix is a hash tag', async () => {
    const redis = await connectCluster();
    const prefix = taggedPrefix('bull');
    const queue = openReceiptsQueue(redis, prefix);
    const seen = new Map<string, number>();
    // the worker gets the same cluster connection; BullMQ duplicates it for its blocking commands
    const worker = new Worker<ReceiptJobData>(
      queue.name,
      (job) => {
        seen.set(job.id as string, (seen.get(job.id as string) ?? 0) + 1);
        return Promise.resolve();
      },
      { connection: redis, prefix, concurrency: 20 },
    );
    worker.on('error', () => undefined);
    try {
      const rows = Array.from({ length: 600 }, (_, i) => row(i));
      for (let i = 0; i < rows.length; i += 200) await enqueueRows(queue, rows.slice(i, i + 200), 3);
      await until('600 jobs processed', () => seen.size === 600, { timeoutMs: 60_000 });
      await until(
        'an empty queue',
        async () => {
          const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
          return Object.values(c).every((n) => n === 0);
        },
        { timeoutMs: 10_000 },
      );
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
      // every key of the queue sits in the one slot of its tag
      const master = await cluster.masterOf(`${prefix}:receipts:meta`);
      const node = new Redis({ host: '127.0.0.1', port: master, lazyConnect: true });
      try {
        await node.connect();
        const keys = await node.keys(`${prefix}:*`);
        expect(keys.length).toBeGreaterThan(0);
        const slots = new Set(await Promise.all(keys.map((k) => node.cluster('KEYSLOT', k))));
        expect(slots.size).toBe(1);
      } finally {
        node.disconnect();
      }
    } finally {
      await worker.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  });

  it('BullMQ without a hash tag in the prefix: its multi-key scripts fail with CROSSSLOT', async () => {
    const redis = await connectCluster();
    const queue = new Queue('receipts', { connection: redis, prefix: `t-untagged-${randomBytes(3).toString('hex')}` });
    queue.on('error', () => undefined);
    try {
      await expect(queue.add('receipt', { n: 1 })).rejects.toThrow(/CROSSSLOT/);
    } finally {
      await queue.close();
    }
  });

  it('the tool’s queues with a plain prefix: BullMQ gets it as one hash tag, so nothing fails with CROSSSLOT', async () => {
    const redis = await connectCluster();
    const plain = `t-plain-${randomBytes(3).toString('hex')}`;
    const queue = openReceiptsQueue(redis, plain);
    const runs = openRunsQueue(redis, plain);
    runs.on('error', () => undefined);
    try {
      expect(queue.toKey('meta')).toBe(`{${plain}}:receipts:meta`);
      await enqueueRows(queue, [row(1), row(2)], 3);
      expect(await queue.getJobCounts('wait')).toEqual({ wait: 2 });
      await upsertSchedule(runs, { id: 'nightly', cron: '0 3 * * *', sources: ['s3://b/{date}/'] });
      expect((await listSchedules(runs)).map((s) => s.id)).toEqual(['nightly']);
      expect(runs.toKey('meta')).toBe(`{${plain}}:runs:meta`);
      // every key of both queues in the one slot of the tag, on one master
      const master = await cluster.masterOf(`{${plain}}`);
      const node = new Redis({ host: '127.0.0.1', port: master, lazyConnect: true });
      try {
        await node.connect();
        const keys = await node.keys(`{${plain}}:*`);
        expect(keys.length).toBeGreaterThan(2);
        expect(new Set(await Promise.all(keys.map((k) => node.cluster('KEYSLOT', k)))).size).toBe(1);
      } finally {
        node.disconnect();
      }
    } finally {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await runs.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await runs.close();
    }
    // one node: the prefix stays as given
    const single = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    const there = openReceiptsQueue(single, plain);
    try {
      expect(there.toKey('meta')).toBe(`${plain}:receipts:meta`);
    } finally {
      await there.close();
      single.disconnect();
    }
  });

  it('a master killed mid-queue: its replica takes over and every job is still processed', async () => {
    const redis = await connectCluster();
    const prefix = taggedPrefix('failover');
    const queue = openReceiptsQueue(redis, prefix);
    const seen = new Set<string>();
    let gate: (() => void) | undefined;
    const halfway = new Promise<void>((resolve) => (gate = resolve));
    const worker = new Worker<ReceiptJobData>(
      queue.name,
      async (job) => {
        seen.add(job.id as string);
        if (seen.size >= 150) gate?.();
        await new Promise((r) => setTimeout(r, 5));
      },
      { connection: redis, prefix, concurrency: 10, lockDuration: 5000, stalledInterval: 2000 },
    );
    worker.on('error', () => undefined);
    try {
      const rows = Array.from({ length: 400 }, (_, i) => row(i));
      for (let i = 0; i < rows.length; i += 200) await enqueueRows(queue, rows.slice(i, i + 200), 5);
      await halfway;
      const master = await cluster.masterOf(`${prefix}:receipts:meta`);
      const { killed, promoted } = await cluster.killMaster(master);
      expect(killed).toBe(master);
      expect(promoted).not.toBe(master);
      expect(await cluster.masterOf(`${prefix}:receipts:meta`)).toBe(promoted);
      await until('400 jobs processed after the failover', () => seen.size === 400, { timeoutMs: 90_000 });
      await until(
        'an empty queue',
        async () => {
          const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'failed');
          return Object.values(c).every((n) => n === 0);
        },
        { timeoutMs: 30_000 },
      );
      // the old master comes back as a replica of the new one
      await cluster.restartNode(killed);
      expect(await cluster.masters()).not.toContain(killed);
    } finally {
      await worker.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  }, 240_000);
});
