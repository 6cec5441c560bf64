// A limit shared with the live app, and answers RevenueCat has sent before, against the sandbox (issue 18):
// others' traffic taking half the limit and giving it back is followed down and up again; a Retry-After given
// in milliseconds (1000 for a second) does not stall the run; Is-Retryable: false fails a row at once; a 529
// is retried, counted apart, and leaves the learned rate alone.
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ingestSources } from '../src/commands/ingest.js';
import { runMigration } from '../src/commands/run.js';
import { startWorkers } from '../src/commands/work.js';
import { createLogger, silentLogger } from '../src/logger.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { openRedis } from '../src/redis/connection.js';
import { RedisKeys } from '../src/redis/keys.js';
import { paceAim } from '../src/workers/rate/discovery.js';
import { readRateState } from '../src/workers/rate/sharedRate.js';
import { redisUrl } from './support/redis.js';
import { testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';

const HEADER = ['platform', 'app_user_id', 'fetch_token'];

/** Polls `check` every 100 ms until it gives a value, for at most `ms`; undefined when it never did. */
async function within<T>(ms: number, check: () => Promise<T | undefined> | T | undefined): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) return undefined;
    await sleep(100);
  }
}

describe("a limit shared with the live app's traffic", () => {
  const fx = pipelineFixture('shared-limit');

  // How fast it follows (goals: down within 10 s, back up within 30 s) is measured by the bench's shared-limit
  // cases (bench/README.md), not here: this test's deadlines only say that it follows at all, on a shared machine.
  it("follows others' traffic: down when it takes half the limit, back up when it ends", async () => {
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 40, rateLimitWindow: 'fixed', rateLimitHeaders: false, latencyMs: 20, backgroundTraffic: { pattern: 'none' } });
    const p = fx.newPrefix('follow');
    const config = testConfig(p, fx.sandbox.url, { ratePerSecond: undefined, concurrency: 16 });
    const rows = Array.from({ length: 4000 }, (_, i) => ['ios', `f-${i}`, token(i)]);
    const source = await writeCsv(fx.dir, 'follow.csv', HEADER, rows);
    await ingestSources({ config, logger: silentLogger(), sources: [source], runId: 'follow' });
    const redis = openRedis(redisUrl());
    const keys = new RedisKeys(p);
    /** What the workers send for the learned rate (pacer.ts), requests/s. */
    const paced = async (): Promise<number | undefined> => {
      const v = await readRateState(redis, keys);
      return v ? paceAim(v.rate * config.rateHeadroom) : undefined;
    };
    // The rate's decisions (info lines of the rate controller), to say what happened when a check fails.
    const out = new PassThrough();
    const decisions: string[] = [];
    const t0 = Date.now();
    out.on('data', (d: Buffer) => {
      for (const line of d
        .toString()
        .split('\n')
        .filter((l) => l.includes('request rate'))) {
        const r = JSON.parse(line) as { msg: string; rate: number; reason?: string };
        decisions.push(`${((Date.now() - t0) / 1000).toFixed(1)} s ${r.rate}/s ${r.reason ?? r.msg}`);
      }
    });
    const workers = await startWorkers({ config, logger: createLogger('info', out) });
    try {
      // Found the limit and held it a while.
      const found = await within(25_000, async () => {
        const v = await readRateState(redis, keys);
        return v?.phase === 'holding' && v.learnedAt !== undefined && v.rate * config.rateHeadroom >= 30 ? v : undefined;
      });
      expect(found, 'the 40/s limit was found within 25 s').toBeDefined();
      await sleep(4000);

      // The live app's traffic takes half of every window: 20/s is left.
      const before = fx.sandbox.stats();
      const fellAt = Date.now();
      fx.sandbox.configure({ backgroundTraffic: { pattern: 'steady', share: 0.5 } });
      expect(fx.sandbox.rateLimit().backgroundShare).toBe(0.5);
      const down = await within(30_000, async () => (((await paced()) ?? Infinity) <= 20 * 1.02 ? Date.now() : undefined));
      expect(down, `paced under what was left within 30 s of the fall at ${fellAt - t0} ms:\n${decisions.join('\n')}`).toBeDefined();
      await sleep(8000);

      // It ends: the whole limit again, climbed back to within 30 s (90% of it admitted over 3 s).
      const roseAt = Date.now();
      fx.sandbox.configure({ backgroundTraffic: { pattern: 'none' } });
      const up = await within(45_000, () => {
        const t = fx.sandbox.stats().timeline;
        const admitted = new Map(t.buckets.map((b) => [b.second, b.admitted]));
        const fromSecond = Math.ceil((roseAt - t.startedAtMs) / 1000);
        const last = t.buckets.at(-1)?.second ?? 0;
        for (let s = fromSecond + 2; s < last; s++) {
          const sum = (admitted.get(s) ?? 0) + (admitted.get(s - 1) ?? 0) + (admitted.get(s - 2) ?? 0);
          if (sum >= 0.9 * 40 * 3) return (t.startedAtMs + (s + 1) * 1000 - roseAt) / 1000;
        }
        return undefined;
      });
      expect(
        up,
        `90% of the restored limit within 45 s (fell at ${((fellAt - t0) / 1000).toFixed(1)} s, rose at ${((roseAt - t0) / 1000).toFixed(1)} s):\n${decisions.join('\n')}`,
      ).toBeDefined();

      // From the fall on, few 429s: a fall to half the limit takes its four episodes (hold, cut 6, 18, 30%) whatever
      // the run's length, so over this short span that is a few per cent at most; over minutes of such traffic, 1%
      // (test/rateDiscovery.test.ts, and the bench's shared-limit cases).
      const after = fx.sandbox.stats();
      const posts = (after.byPath['POST /v1/receipts'] ?? 0) - (before.byPath['POST /v1/receipts'] ?? 0);
      expect(posts).toBeGreaterThan(300);
      // (A bound for a 668-request run on a shared machine: a fall now costs a few 429s of edge holds before the
      // queue pauses, rather than one and a paused second. The 1% goal is the bench's, over minutes: rate-control.md.)
      expect((after.rateLimited - before.rateLimited) / posts, `${after.rateLimited - before.rateLimited} 429s of ${posts} requests`).toBeLessThanOrEqual(0.05);
    } finally {
      await workers.close();
      redis.disconnect();
    }
  }, 150_000);
});

describe('answers RevenueCat has sent before', () => {
  const fx = pipelineFixture('old-answers');

  it('a Retry-After of 1000 meant as milliseconds does not pause the run for 1,000 seconds; one warning names it', async () => {
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 30, rateLimitWindow: 'fixed', rateLimitHeaders: false, latencyMs: 10, retryAfterUnit: 'milliseconds' });
    const p = fx.newPrefix('retry-ms');
    // The default wait for a 429 that names none is long here, so a Retry-After read as nothing would show too.
    const config = testConfig(p, fx.sandbox.url, { ratePerSecond: undefined, concurrency: 16, rateLimitDefaultWaitMs: 5000 });
    const rows = Array.from({ length: 600 }, (_, i) => ['ios', `m-${i}`, token(i)]);
    const source = await writeCsv(fx.dir, 'retry-ms.csv', HEADER, rows);
    const out = new PassThrough();
    let log = '';
    out.on('data', (d: Buffer) => (log += d.toString()));
    const started = Date.now();
    const result = await runMigration({ config, logger: createLogger('warn', out), sources: [source], runId: 'retry-ms', outDir: join(fx.dir, 'retry-ms') });
    const seconds = (Date.now() - started) / 1000;
    expect(result.summary.rows_succeeded).toBe(600);
    // The API did refuse requests, with Retry-After: 1000 …
    expect(fx.sandbox.stats().rateLimited).toBeGreaterThan(0);
    // … and the run still took about what the limit allows (20 s at 30/s, plus the climb from 5/s), not minutes.
    expect(seconds).toBeLessThan(45);
    const warnings = log
      .trim()
      .split('\n')
      .filter((l) => l.includes('Retry-After: 1000'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/read as 1000 ms/);
  }, 60_000);

  it('Is-Retryable: false fails the row at once; a 529 is retried, counted apart, and leaves the learned rate alone', async () => {
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 0, latencyMs: 5, retryAfterUnit: 'seconds' });
    const p = fx.newPrefix('answers');
    const config = testConfig(p, fx.sandbox.url, { ratePerSecond: 50, concurrency: 8 });
    const rows = [
      ...Array.from({ length: 4 }, (_, i) => ['ios', `n-${i}`, token(i, 'noretry')]),
      ...Array.from({ length: 3 }, (_, i) => ['ios', `b-${i}`, token(100 + i, 'busy1')]),
      ...Array.from({ length: 10 }, (_, i) => ['ios', `o-${i}`, token(200 + i)]),
    ];
    const source = await writeCsv(fx.dir, 'answers.csv', HEADER, rows);
    const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'answers', outDir: join(fx.dir, 'answers') });
    const s = result.summary;
    expect(s.rows_succeeded).toBe(13);
    expect(s.rows_failed).toBe(4);
    expect(s.by_error_code).toEqual({ rc_7110: 4 });
    // Each row marked not retryable was sent once.
    expect(fx.sandbox.stats().byDirective.noretry).toBe(4);
    // The 529s: one per busy row, counted apart from 429s.
    expect(s.requests_in_process).toBe(3);
    expect(s.requests_rate_limited).toBe(0);
    const redis = openRedis(redisUrl());
    try {
      const failed: { reason?: string; attempts: number; message?: string }[] = [];
      for await (const o of new RunLedger(redis, p, 'answers').outcomes()) if (o.status === 'failed') failed.push(o);
      expect(failed.every((o) => o.attempts === 1 && /Is-Retryable: false/.test(o.message ?? ''))).toBe(true);
      // --rate 50 stands: no 529 lowered it.
      expect((await readRateState(redis, new RedisKeys(p)))?.rate).toBe(50);
    } finally {
      redis.disconnect();
    }
  }, 60_000);
});
