// A crash is never the row's fault (issue 19). First the rule itself (workers/inFlightRows.ts) against Redis, with
// exact counts: a death is counted on a row only when its request was in flight and its sender's heartbeat is
// gone, and a row in flight at poisonStarts consecutive deaths is poison. Then the soak (bench/scenarios/soak.mjs)
// at a small size: ingest killed and resumed, three `rc-migrate work` processes (one SIGKILLed every few seconds),
// Redis killed and restarted from its AOF, 3% 5xx, and a poison row (the test-only hook of
// src/workers/testPoison.ts: NODE_ENV=test plus RC_MIGRATE_TEST_POISON_TOKEN) that kills every worker sending
// it. Every other row must succeed; the poison row must end as poison_row without ever reaching the API.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisClient } from '../src/redis/connection.js';
import { RedisKeys } from '../src/redis/keys.js';
import { InFlightRows, heartbeatTtlFor } from '../src/workers/inFlightRows.js';
import { testPoisonHook } from '../src/workers/testPoison.js';
import { redisUrl, uniquePrefix } from './support/redis.js';
import { tempDir } from './support/harness.js';

const ROOT = join(import.meta.dirname, '..');

describe('in-flight rows: whose fault a stall is', () => {
  let redis: RedisClient;
  let prefix: string;
  beforeAll(() => {
    redis = openRedis(redisUrl());
    prefix = uniquePrefix('flight');
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const worker = (id: string, poisonStarts = 3): InFlightRows => new InFlightRows(redis, prefix, { lockDurationMs: 30_000, poisonStarts, workerId: id });
  const keys = (): RedisKeys => new RedisKeys(prefix);

  it('counts a death only when the sender named died with the request in flight, and forgets it when a request comes back', async () => {
    const a = worker('a');
    const b = worker('b');
    await a.start(() => undefined);
    await b.start(() => undefined);
    try {
      // A request that comes back leaves nothing.
      expect(await a.begin('R.1')).toEqual({ deaths: 0, poison: false, died: false });
      await a.end('R.1');
      expect(await redis.exists(keys().inFlight('R.1'))).toBe(0);

      // A's lock lapsed while A lives (a pause, a failover): B takes the row, nothing is counted.
      await a.begin('R.2');
      expect(await b.begin('R.2')).toEqual({ deaths: 0, poison: false, died: false });
      // A's late answer does not clear B's request.
      await a.end('R.2');
      expect(await redis.hget(keys().inFlight('R.2'), 'w')).toBe('b');

      // B dies with the row in flight (its heartbeat gone): one death, counted once, by whoever sends it next.
      await b.stop(true);
      expect(await a.begin('R.2')).toEqual({ deaths: 1, poison: false, died: true });
      // A steps aside (the rows of one death are sent apart, processor.ts): no sender named, the death kept, and
      // its next begin counts nothing more, even if A dies in between (it was not in flight then).
      await a.stepAside('R.2');
      expect(await redis.hget(keys().inFlight('R.2'), 'w')).toBeNull();
      expect(await redis.hget(keys().inFlight('R.2'), 'd')).toBe('1');
      expect(await a.begin('R.2')).toEqual({ deaths: 1, poison: false, died: false });
      await a.end('R.2');
      expect(await redis.exists(keys().inFlight('R.2'))).toBe(0);
    } finally {
      await a.stop(true);
      await b.stop(true);
    }
  });

  it('fails a row in flight at poisonStarts consecutive deaths, and no other', async () => {
    const senders = ['p1', 'p2', 'p3', 'p4'].map((id) => worker(id));
    for (const s of senders) await s.start(() => undefined);
    try {
      const starts = [];
      for (const s of senders) {
        starts.push(await s.begin('R.poison'));
        await s.stop(true); // died with the request in flight
      }
      expect(starts).toEqual([
        { deaths: 0, poison: false, died: false },
        { deaths: 1, poison: false, died: true },
        { deaths: 2, poison: false, died: true },
        { deaths: 3, poison: true, died: true },
      ]);
      await senders[3]!.forget('R.poison');
      expect(await redis.keys(`${prefix}:flight:*`)).toEqual([]);
      // Heartbeats removed by stop(true); one left running expires within its ttl (a third of the lock, ≤ 10 s).
      expect(await redis.keys(`${prefix}:worker:*`)).toEqual([]);
      expect([heartbeatTtlFor(30_000), heartbeatTtlFor(3000), heartbeatTtlFor(300)]).toEqual([10_000, 1000, 300]);
    } finally {
      for (const s of senders) await s.stop(true);
    }
  });

  it('arms the poison hook only under NODE_ENV=test with a token', () => {
    expect(testPoisonHook({ RC_MIGRATE_TEST_POISON_TOKEN: 'x' })).toBeUndefined();
    expect(testPoisonHook({ NODE_ENV: 'production', RC_MIGRATE_TEST_POISON_TOKEN: 'x' })).toBeUndefined();
    expect(testPoisonHook({ NODE_ENV: 'test' })).toBeUndefined();
    expect(testPoisonHook({ NODE_ENV: 'test', RC_MIGRATE_TEST_POISON_TOKEN: 'x' })).toBeTypeOf('function');
  });
});

interface SoakFigures {
  rows: number;
  kills: { workers: number; poisonDeaths: number; ingester: number; redis: number };
  succeeded: number;
  failedByFaults: number;
  falselyFailed: number;
  falselyFailedExamples: unknown[];
  lost: number;
  sentTwice: number;
  sentTwiceBound: number;
  sentTwiceActiveAt: { workerDeath: number; redisRestart: number; neither: number };
  extraPosts: number;
  faults5xx: number;
  overlaps: number;
  poison: { status: string; reason: string; message: string; posts: number };
  activeLeft: number;
  leftKeys: { inFlight: number; workers: number; ofKilled: number };
  unexpectedExits: string[];
  ingestExit: number;
}

describe('soak, small', () => {
  beforeAll(() => {
    // The soak runs `node dist/cli.js`: it must be built from these sources.
    if (!existsSync(join(ROOT, 'dist', 'workers', 'inFlightRows.js')) || !readFileSync(join(ROOT, 'dist', 'config.js'), 'utf8').includes('RC_MIGRATE_POISON_STARTS')) {
      throw new Error('dist/ is missing or older than src/: run `npm run build` first');
    }
  });

  it('kills, 5xx, an ingester kill and a Redis restart: every row but the poison row succeeds, none lost; the poison row is poison_row, never sent', async () => {
    const ROWS = 1500;
    const CONCURRENCY = 8;
    const dir = await tempDir('soak');
    const json = join(dir, 'soak.json');
    try {
      const args = [
        'bench/scenarios/soak.mjs',
        '--rows',
        String(ROWS),
        '--rate',
        '300',
        '--concurrency',
        String(CONCURRENCY),
        '--kill-every',
        '8',
        '--lock-ms',
        '4000',
        '--poison',
        '--no-baseline',
        '--json',
        json,
      ];
      const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
      child.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code, out).toBe(0);
      const f = (JSON.parse(await readFile(json, 'utf8')) as { faulted: SoakFigures }).faulted;

      expect(f.rows).toBe(ROWS);
      expect(f.lost).toBe(0);
      expect(f.falselyFailed, JSON.stringify(f.falselyFailedExamples)).toBe(0);
      // 8 attempts against 3% 5xx: no row runs out of them, so every row but the poison row succeeds.
      expect(f.failedByFaults).toBe(0);
      expect(f.succeeded).toBe(ROWS - 1);
      expect(f.poison).toMatchObject({ status: 'failed', reason: 'poison_row', posts: 0 });
      // It was in flight at exactly poisonStarts (default 5) deaths: the sixth sender found it poison and did not
      // send it. Its own hook made each death, unless a scheduled SIGKILL landed first, between its sender naming
      // itself in Redis and the hook.
      expect(f.poison.message).toMatch(/in flight when 5 worker processes died/);
      expect(f.kills.poisonDeaths).toBeLessThanOrEqual(5);
      expect(f.kills.poisonDeaths).toBeGreaterThanOrEqual(Math.max(1, 5 - f.kills.workers));
      expect(f.kills.ingester).toBe(1);
      expect(f.kills.redis).toBe(1);
      expect(f.kills.workers).toBeGreaterThanOrEqual(1);
      expect(f.ingestExit).toBe(0);
      expect(f.unexpectedExits).toEqual([]);
      // A receipt imported twice is one whose row was active at a worker's death or at Redis's: at most
      // concurrency per worker death, and per worker at the Redis restart.
      expect(f.sentTwiceActiveAt.neither).toBe(0);
      expect(f.sentTwice).toBe(f.sentTwiceActiveAt.workerDeath + f.sentTwiceActiveAt.redisRestart);
      expect(f.sentTwiceBound).toBe((f.kills.workers + f.kills.poisonDeaths + 3) * CONCURRENCY);
      expect(f.sentTwice).toBeLessThanOrEqual(f.sentTwiceBound);
      expect(f.overlaps).toBe(0);
      // Nothing left: no active job, no row's in-flight hash, no heartbeat of a worker stopped cleanly. A worker
      // killed in the last second before the end may leave its heartbeat, expiring on its own (CI, once).
      expect(f.activeLeft).toBe(0);
      expect({ inFlight: f.leftKeys.inFlight, workers: f.leftKeys.workers }).toEqual({ inFlight: 0, workers: 0 });
      expect(f.leftKeys.ofKilled).toBeLessThanOrEqual(f.kills.workers + f.kills.poisonDeaths);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
