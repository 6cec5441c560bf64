// Rate control against a fx.sandbox that enforces a limit: queue-wide pauses on 429, the announced limit,
// two worker processes sharing one rate, the per-user lock across processes, and the ingest high-water mark;
// and discovery: no --rate, a limit the pipeline is not told, found and shared by every process.
import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runMigration } from '../src/commands/run.js';
import { ingestSources } from '../src/commands/ingest.js';
import { startWorkers } from '../src/commands/work.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { queuedRows } from '../src/queue/highWater.js';
import { openReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { openRedis } from '../src/redis/connection.js';
import { RedisKeys } from '../src/redis/keys.js';
import { RateController } from '../src/workers/rateController.js';
import { describeRate, readRateState } from '../src/workers/rate/sharedRate.js';
import { runStatus } from '../src/commands/status.js';
import { silentLogger } from '../src/logger.js';
import type { Config } from '../src/config.js';
import type { Outcome } from '../src/types.js';
import { redisUrl } from './support/redis.js';
import { SANDBOX_KEY, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { until } from './support/until.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');
const HEADER = ['platform', 'app_user_id', 'fetch_token'];

async function outcomesOf(config: Config, runId: string): Promise<Outcome[]> {
  const redis = openRedis(config.redisUrl);
  try {
    const all: Outcome[] = [];
    for await (const o of new RunLedger(redis, config.prefix, runId).outcomes()) all.push(o);
    return all;
  } finally {
    redis.disconnect();
  }
}

async function waitComplete(config: Config, runId: string, timeoutMs: number): Promise<void> {
  const redis = openRedis(config.redisUrl);
  try {
    const ledger = new RunLedger(redis, config.prefix, runId);
    let last = '';
    await until(
      `run ${runId} to complete`,
      async () => {
        const state = await ledger.state();
        last = JSON.stringify(state);
        return state.complete;
      },
      { timeoutMs, everyMs: 100, state: () => last },
    );
  } finally {
    redis.disconnect();
  }
}

/** A `rc-migrate work` process; resolves its stderr once it exits. */
function workProcess(env: Record<string, string>, args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, [CLI, 'work', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  return { child, done };
}

describe('rate control', () => {
  const fx = pipelineFixture('rate');

  it("a 429 holds every process's schedule, costs no attempt, reaches the shared rate, and the run finishes", async () => {
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 10, rateLimitHeaders: false, latencyMs: 5 });
    const p = fx.newPrefix('pause');
    const config = testConfig(p, fx.sandbox.url, { ratePerSecond: 80, concurrency: 8 });
    const rows = Array.from({ length: 60 }, (_, i) => ['ios', `p-${i}`, token(i)]);
    const source = await writeCsv(fx.dir, 'pause.csv', HEADER, rows);

    const redis = openRedis(redisUrl());
    try {
      const started = Date.now();
      const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'pause', outDir: join(fx.dir, 'pause') });
      expect(result.exitCode).toBe(0);
      expect(result.summary.rows_succeeded).toBe(60);
      expect(fx.sandbox.stats().rateLimited).toBeGreaterThan(0);
      expect(result.summary.by_http_status['429']).toBe(fx.sandbox.stats().rateLimited);
      // The schedule every process takes its slots from was held (pace-1.lua): for two slots at a window's edge,
      // up to the whole Retry-After while refusals went on (test/rateShared.test.ts holds the steps).
      const hold = Number(await redis.hget(new RedisKeys(p).pace, 'hold'));
      expect(hold).toBeGreaterThan(started);
      // 429s never count as attempts.
      const outcomes = await outcomesOf(config, 'pause');
      expect(outcomes.every((o) => o.attempts === 1)).toBe(true);
      // And the shared rate took the 429s in: noted, and not raised. (A lone 429 at a held rate holds the rate,
      // a repeat cuts it: rate/discovery.ts; whether this short run has a repeat depends on the machine's timing.)
      const shared = await readRateState(redis, new RedisKeys(p));
      expect(shared?.lastRateLimitedAt).toBeDefined();
      expect(shared?.rate).toBeLessThanOrEqual(80);
    } finally {
      redis.disconnect();
    }
  });

  it('adopts the limit the API announces in RevenueCat-Rate-Limit-Current-Limit', async () => {
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 15, rateLimitHeaders: true, latencyMs: 5 });
    const p = fx.newPrefix('announce');
    const config = testConfig(p, fx.sandbox.url, { ratePerSecond: 200, concurrency: 8 });
    const rows = Array.from({ length: 60 }, (_, i) => ['ios', `a-${i}`, token(i)]);
    const source = await writeCsv(fx.dir, 'announce.csv', HEADER, rows);
    const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'announce', outDir: join(fx.dir, 'announce') });
    expect(result.summary.rows_succeeded).toBe(60);
    const redis = openRedis(redisUrl());
    try {
      const shared = await redis.hgetall(new RedisKeys(p).rate);
      expect(Number(shared.ceiling)).toBe(15);
      expect(Number(shared.rate)).toBeLessThanOrEqual(15);
    } finally {
      redis.disconnect();
    }
    // Only requests sent before the first answer announced the limit could have been refused.
    expect(fx.sandbox.stats().rateLimited).toBeLessThanOrEqual(8);
  });

  it('two worker processes share one rate and stay within the limit the fx.sandbox enforces', async () => {
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 25, rateLimitHeaders: false, latencyMs: 20 });
    const p = fx.newPrefix('two');
    const config = testConfig(p, fx.sandbox.url, { ratePerSecond: 20 });
    const rows = Array.from({ length: 160 }, (_, i) => ['android', `t-${i}`, token(i), 'gold']);
    const source = await writeCsv(fx.dir, 'two.csv', [...HEADER, 'product_id'], rows);
    await ingestSources({ config, logger: silentLogger(), sources: [source], runId: 'two' });

    const env = { REDIS_URL: redisUrl(), RC_MIGRATE_PREFIX: p, REVENUECAT_API_URL: fx.sandbox.url, REVENUECAT_API_KEY: SANDBOX_KEY, LOG_LEVEL: 'debug' };
    const started = Date.now();
    const a = workProcess(env, ['--rate', '20', '--concurrency', '8']);
    const b = workProcess(env, ['--rate', '1200/min', '--concurrency', '8']);
    try {
      await waitComplete(config, 'two', 60_000);
    } finally {
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
    }
    const elapsed = (Date.now() - started) / 1000;
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(fx.sandbox.stats().rateLimited).toBe(0);
    expect(fx.sandbox.stats().successfulReceipts).toBe(160);
    // Both processes sent rows, and together they kept to 20/s: 160 rows take at least ~8 s.
    expect(ra.stderr.match(/row succeeded/g)?.length ?? 0).toBeGreaterThan(10);
    expect(rb.stderr.match(/row succeeded/g)?.length ?? 0).toBeGreaterThan(10);
    expect(elapsed).toBeGreaterThan(7);
  });

  it('finds a limit it is not told (no --rate, no headers): the learned rate ends within [0.8, 1.0] of it, with few 429s', async () => {
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 40, rateLimitHeaders: false, latencyMs: 20, latencyJitterMs: 0 });
    const p = fx.newPrefix('discover');
    // No ratePerSecond: the default is to discover.
    const config = testConfig(p, fx.sandbox.url, { ratePerSecond: undefined, concurrency: 16 });
    expect(config.ratePerSecond).toBeUndefined();
    const rows = Array.from({ length: 700 }, (_, i) => ['ios', `d-${i}`, token(i)]);
    const source = await writeCsv(fx.dir, 'discover.csv', HEADER, rows);
    const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'discover', outDir: join(fx.dir, 'discover') });
    expect(result.summary.rows_succeeded).toBe(700);
    const redis = openRedis(redisUrl());
    try {
      const learned = await readRateState(redis, new RedisKeys(p));
      expect(learned).toBeDefined();
      expect(learned!.rate).toBeGreaterThanOrEqual(40 * 0.8);
      // What the workers send (2% under the learned rate) stays within the limit.
      expect(learned!.rate * config.rateHeadroom).toBeLessThanOrEqual(40);
      expect(learned!.phase).toBe('holding');
      expect(learned!.window).toBe('second');
      expect(Date.parse(learned!.learnedAt ?? '')).toBeGreaterThan(Date.now() - 120_000);
      // The run's timeline holds the rate over time (report.html draws it against the 429s), up to about the limit.
      const rates = (await new RunLedger(redis, p, 'discover').timeline()).map((pt) => pt.rate).filter((r): r is number => r !== undefined);
      expect(rates.length).toBeGreaterThanOrEqual(2);
      expect(Math.max(...rates)).toBeGreaterThanOrEqual(40 * 0.8);
      // `status` shows it, from any machine.
      const status = await runStatus({ config, runId: 'discover', sampleMs: 0 });
      expect(status.sharedRate?.rate).toBe(learned!.rate);
      expect(describeRate(status.sharedRate!)).toMatch(/^request rate \d+\.\d\/s \(learned \d+ s ago\)$/);
    } finally {
      redis.disconnect();
    }
    const stats = fx.sandbox.stats();
    expect(stats.rateLimited).toBeGreaterThan(0);
    expect(stats.rateLimited / (stats.byPath['POST /v1/receipts'] ?? 1)).toBeLessThan(0.02);
    // Once found, the limit was used: some second after the first 429 admitted at least 80% of it.
    const buckets = stats.timeline.buckets;
    const first429 = buckets.find((b) => b.rateLimited > 0)?.second ?? Infinity;
    expect(Math.max(...buckets.filter((b) => b.second > first429).map((b) => b.succeeded))).toBeGreaterThanOrEqual(32);
  });

  it('caps discovery at --rate: never above it even when the API allows more, and learns nothing it was not told', async () => {
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 100, rateLimitHeaders: false, latencyMs: 10, latencyJitterMs: 0 });
    const p = fx.newPrefix('ceiling');
    const config = testConfig(p, fx.sandbox.url, { ratePerSecond: 25, concurrency: 16 });
    const rows = Array.from({ length: 250 }, (_, i) => ['ios', `c-${i}`, token(i)]);
    const source = await writeCsv(fx.dir, 'ceiling.csv', HEADER, rows);
    const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'ceiling', outDir: join(fx.dir, 'ceiling') });
    expect(result.summary.rows_succeeded).toBe(250);
    const stats = fx.sandbox.stats();
    expect(stats.rateLimited).toBe(0);
    expect(Math.max(...stats.timeline.buckets.map((b) => b.admitted))).toBeLessThanOrEqual(26);
    const redis = openRedis(redisUrl());
    try {
      expect(await readRateState(redis, new RedisKeys(p))).toMatchObject({ rate: 25, phase: 'holding' });
    } finally {
      redis.disconnect();
    }
  });

  it('two worker processes without --rate learn one rate together, and a restarted worker starts from it', async () => {
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 30, rateLimitHeaders: false, latencyMs: 20, latencyJitterMs: 0 });
    const p = fx.newPrefix('learn2');
    const config = testConfig(p, fx.sandbox.url, { ratePerSecond: undefined });
    const rows = Array.from({ length: 600 }, (_, i) => ['android', `l-${i}`, token(i), 'gold']);
    const source = await writeCsv(fx.dir, 'learn2.csv', [...HEADER, 'product_id'], rows);
    await ingestSources({ config, logger: silentLogger(), sources: [source], runId: 'learn2' });

    const env = { REDIS_URL: redisUrl(), RC_MIGRATE_PREFIX: p, REVENUECAT_API_URL: fx.sandbox.url, REVENUECAT_API_KEY: SANDBOX_KEY, LOG_LEVEL: 'debug' };
    const a = workProcess(env, ['--concurrency', '8']);
    const b = workProcess(env, ['--concurrency', '8']);
    try {
      await waitComplete(config, 'learn2', 90_000);
    } finally {
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
    }
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(fx.sandbox.stats().successfulReceipts).toBe(600);
    expect(ra.stderr.match(/row succeeded/g)?.length ?? 0).toBeGreaterThan(50);
    expect(rb.stderr.match(/row succeeded/g)?.length ?? 0).toBeGreaterThan(50);
    const stats = fx.sandbox.stats();
    expect(stats.rateLimited / (stats.byPath['POST /v1/receipts'] ?? 1)).toBeLessThan(0.03);
    const redis = openRedis(redisUrl());
    try {
      const learned = await readRateState(redis, new RedisKeys(p));
      expect(learned!.rate).toBeGreaterThanOrEqual(30 * 0.8);
      expect(learned!.rate * config.rateHeadroom).toBeLessThanOrEqual(30);
      // A worker started later (no --rate) begins at the learned rate, not at the safe 5/s of a first start. If the
      // run ended during a probe, the shared pace is the probe's (the view shows it as `probing`, beside the held
      // rate), and a joining worker applies that pace like every other process would.
      const restarted = new RateController(redis, p, { logger: silentLogger(), tickMs: 60_000 });
      expect((await restarted.start()).rate).toBe(learned!.probing ?? learned!.rate);
      await restarted.stop();
    } finally {
      redis.disconnect();
    }
  });

  it('never has two requests in flight for one user, across two processes, with many rows per user', async () => {
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 0, latencyMs: 15, latencyJitterMs: 10 });
    const p = fx.newPrefix('users');
    const config = testConfig(p, fx.sandbox.url);
    // 12 users with 25 receipts each, interleaved so that every fetch of jobs holds several rows per user.
    const rows = Array.from({ length: 300 }, (_, i) => ['ios', `busy-${i % 12}`, token(i)]);
    const source = await writeCsv(fx.dir, 'users.csv', HEADER, rows);
    await ingestSources({ config, logger: silentLogger(), sources: [source], runId: 'users' });
    const env = { REDIS_URL: redisUrl(), RC_MIGRATE_PREFIX: p, REVENUECAT_API_URL: fx.sandbox.url, REVENUECAT_API_KEY: SANDBOX_KEY, LOG_LEVEL: 'warn' };
    const a = workProcess(env, ['--rate', '500', '--concurrency', '16']);
    const b = workProcess(env, ['--rate', '500', '--concurrency', '16']);
    try {
      await waitComplete(config, 'users', 90_000);
    } finally {
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
      await Promise.all([a.done, b.done]);
    }
    const stats = fx.sandbox.stats();
    expect(stats.successfulReceipts).toBe(300);
    expect(stats.overlaps).toBe(0);
    expect(stats.maxInFlightPerUser).toBe(1);
    // Waiting for a busy user never spends an attempt.
    const outcomes = await outcomesOf(config, 'users');
    expect(outcomes).toHaveLength(300);
    expect(outcomes.every((o) => o.status === 'succeeded' && o.attempts === 1)).toBe(true);
  });

  it('the ingester holds the queue under its high-water mark on a file far larger than it', async () => {
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 0, latencyMs: 0, latencyJitterMs: 0 });
    const p = fx.newPrefix('hwm');
    const config = testConfig(p, fx.sandbox.url, { highWaterMark: 500, ingestChunkSize: 100, ratePerSecond: 5000, concurrency: 32 });
    const rows = Array.from({ length: 12_000 }, (_, i) => ['ios', `h-${i}`, token(i)]);
    const source = await writeCsv(fx.dir, 'hwm.csv', HEADER, rows);
    const redis = openRedis(redisUrl());
    const queue = openReceiptsQueue(redis, p);
    let maxQueued = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        maxQueued = Math.max(maxQueued, await queuedRows(queue));
        await sleep(5);
      }
    })();
    try {
      // No workers yet: the ingester must stop at the mark and wait.
      const ingesting = ingestSources({ config, logger: silentLogger(), sources: [source], runId: 'hwm' });
      await until('the ingester to fill the queue to its mark', async () => (await queuedRows(queue)) >= 500, { timeoutMs: 30_000 });
      const parked = await queuedRows(queue);
      expect(parked).toBeGreaterThanOrEqual(500);
      expect(parked).toBeLessThanOrEqual(600);
      const state = await new RunLedger(redis, p, 'hwm').state();
      expect(state.ingest).toBe('running');
      // Workers drain it; the ingester resumes and finishes, never letting the queue grow past the mark.
      const workers = await startWorkers({ config, logger: silentLogger() });
      try {
        const { result } = await ingesting;
        expect(result.queued).toBe(12_000);
        await waitComplete(config, 'hwm', 60_000);
      } finally {
        await workers.close();
      }
      watching = false;
      await watcher;
      expect(maxQueued).toBeLessThanOrEqual(600);
      expect(fx.sandbox.stats().successfulReceipts).toBe(12_000);
    } finally {
      watching = false;
      await queue.close();
      redis.disconnect();
    }
  });
});
