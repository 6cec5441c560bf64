// The learned rate as every worker process shares it through Redis (src/workers/rate/sharedRate.ts,
// src/workers/rateController.ts, src/workers/pacer.ts, src/redis/scripts/pace-1.lua and rateUpdate-1.lua):
// one state per scope, learned by one process and used by the others and by a restarted one; the pacer's log
// that measures the limit at a 429; answers that are not the limit (7638, 529) leave the rate alone.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisKeys } from '../src/redis/keys.js';
import { silentLogger } from '../src/logger.js';
import { classify } from '../src/revenuecat/classify.js';
import type { ApiResult } from '../src/revenuecat/client.js';
import { Pacer } from '../src/workers/pacer.js';
import { RateController } from '../src/workers/rateController.js';
import { describeRate, readRateState, SharedRate } from '../src/workers/rate/sharedRate.js';
import { redisScope } from './support/redis.js';

const scope = redisScope();
const prefix = (name: string): string => scope.prefix(name);
const connect = (): Redis => scope.connect();
afterAll(() => scope.close());

function response(status: number, body: unknown, headers: ApiResult extends infer R ? (R extends { kind: 'response'; headers: infer H } ? H : never) : never = {}): ApiResult {
  return { kind: 'response', status, body, headers, durationMs: 3 };
}

/** Takes `n` slots of the pacer at a rate so high that they all fall within a few milliseconds. */
async function send(pacer: Pacer, n: number): Promise<void> {
  const rate = pacer.rate;
  pacer.rate = 100_000;
  for (let i = 0; i < n; i++) expect(await pacer.take()).toBe(true);
  pacer.rate = rate;
}

describe('the shared rate', () => {
  it('is learned by one process at a 429, from what the pacer logged, and used by the others and by a restarted one', async () => {
    const p = prefix('share');
    const logger = silentLogger();
    const a = new RateController(connect(), p, { configuredRate: 100, logger, tickMs: 60_000 });
    const b = new RateController(connect(), p, { logger, tickMs: 60_000 });
    try {
      expect((await a.start()).rate).toBe(100);
      // B has no --rate: it joins the rate A started, instead of discovering its own.
      expect((await b.start()).rate).toBe(100);

      // 40 requests went out in the last second, then one was refused: the API admitted 40 - 1 = 39 a second.
      await send(new Pacer(connect(), p, 98), 40);
      await a.rateLimited({ retryAfterMs: 1000, durationMs: 0 });
      expect(a.current.rate).toBe(39);
      expect(a.current.learned).toMatchObject({ rate: 39, phase: 'holding', window: 'second' });

      await b.refresh();
      expect(b.current.rate).toBe(39);

      const view = await readRateState(connect(), new RedisKeys(p));
      expect(view).toMatchObject({ scope: 'all', rate: 39, phase: 'holding', window: 'second' });
      expect(Date.parse(view?.learnedAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
      expect(Date.parse(view?.lastRateLimitedAt ?? '')).toBeGreaterThan(Date.now() - 60_000);

      // A restarted worker (no --rate) starts from the learned rate, not from 5/s.
      const restarted = new RateController(connect(), p, { logger, tickMs: 60_000 });
      expect((await restarted.start()).rate).toBe(39);
      await restarted.stop();
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('counts in the pacer log what was sent and what was refused, and holds the schedule for a Retry-After', async () => {
    const p = prefix('log');
    const redis = connect();
    const shared = new SharedRate(redis, new RedisKeys(p));
    await send(new Pacer(redis, p, 50), 25);
    const before = await shared.counts();
    expect(before.sent1).toBe(25);
    expect(before.sent60).toBe(25);
    const refused = await shared.counts({ sentAt: before.now, holdMs: 3000, from1: before.now - 1000, from60: before.now - 60_000 });
    expect(refused.admitted1).toBe(24);
    expect(refused.admitted60).toBe(24);
    // The next slot is after the hold.
    const hold = Number(await redis.hget(new RedisKeys(p).pace, 'hold'));
    expect(hold).toBeGreaterThanOrEqual(before.now + 3000);
    expect(Number(await redis.hget(new RedisKeys(p).pace, 'next'))).toBeGreaterThanOrEqual(hold);
  });

  it('holds the schedule for two slots at a 429 of "within a second", doubling while the same second refuses more, up to the wait', async () => {
    const p = prefix('edge');
    const redis = connect();
    const shared = new SharedRate(redis, new RedisKeys(p));
    await send(new Pacer(redis, p, 50), 10);
    const { now } = await shared.counts();
    const refuse = (edgeMs: number) => shared.counts({ sentAt: now, holdMs: 1000, edgeMs, from1: now - 1000, from60: now - 60_000 });
    // The second's first refusal: 40 ms (two slots at 50/s), then 80, 160, 320, 640, and never beyond the wait.
    const held: number[] = [];
    for (let i = 0; i < 6; i++) held.push((await refuse(40)).heldMs);
    expect(held).toEqual([40, 80, 160, 320, 640, 1000]);
    // Without an edge (an exact wait, a per-minute budget) the whole wait holds at once.
    const q = prefix('edge-none');
    const other = new SharedRate(redis, new RedisKeys(q));
    await send(new Pacer(redis, q, 50), 10);
    const at = (await other.counts()).now;
    expect((await other.counts({ sentAt: at, holdMs: 1000, from1: at - 1000, from60: at - 60_000 })).heldMs).toBe(1000);
    const hold = Number(await redis.hget(new RedisKeys(q).pace, 'hold'));
    expect(hold).toBeGreaterThanOrEqual(at + 1000);
  });

  it('brackets a window start between a refused request and the first admitted after it, and holds until a known start', async () => {
    const p = prefix('bracket');
    const redis = connect();
    const shared = new SharedRate(redis, new RedisKeys(p));
    const pacer = new Pacer(redis, p, 50);
    const refuse = (at: number) => shared.counts({ sentAt: at, holdMs: 1000, edgeMs: 40, from1: at - 1000, from60: at - 60_000 });
    await send(pacer, 5);
    await sleep(250);
    // A refused request that took 200 ms (sent after the 5 above): its bracket waits three such round trips for the
    // answers after it.
    const t0 = (await shared.counts()).now - 200;
    // Nothing refused before it: no bracket. Its own is open until the requests sent after it have their answers.
    expect((await refuse(t0)).edgeBracket).toBeUndefined();
    await sleep(60);
    await send(pacer, 3);
    const t1 = (await shared.counts()).now;
    // Just sent: a 429 for them may still be on its way.
    expect((await shared.counts()).edgeBracket).toBeUndefined();
    await sleep(700);
    // Their answers are in: a window opened after the refused request (t0) and no later than the admitted ones
    // (sent by t1, in 10 ms buckets). Any call resolves it (a tick's count here), once.
    const resolved = await shared.counts();
    expect(resolved.edgeBracket?.from).toBe(t0);
    expect(resolved.edgeBracket?.to).toBeGreaterThan(t0 + 200);
    expect(resolved.edgeBracket?.to).toBeLessThanOrEqual(t1 + 10);
    expect((await shared.counts()).edgeBracket).toBeUndefined();
    // Refusals one after another, nothing admitted in between: the bracket starts at the last of them.
    const t2 = (await shared.counts()).now;
    await refuse(t2);
    await refuse(t2 + 1);
    await sleep(20);
    await send(pacer, 2);
    await sleep(150);
    expect((await shared.counts()).edgeBracket?.from).toBe(t2 + 1);
    // With the window's start known, the hold ends there: not two slots, not doubling, not the whole wait.
    const { now } = await shared.counts();
    const known = await shared.counts({ sentAt: now, holdMs: 1000, edgeMs: 40, opensAt: now + 300, from1: now - 1000, from60: now - 60_000 });
    expect(known.heldMs).toBeGreaterThan(250);
    expect(known.heldMs).toBeLessThanOrEqual(300);
    expect(Number(await redis.hget(new RedisKeys(p).pace, 'hold'))).toBe(now + 300);
  });

  it('a 429 at a window edge leaves the queue running: only its row waits; refusals that go on pause the queue', async () => {
    const p = prefix('edge-action');
    const rate = new RateController(connect(), p, { configuredRate: 50, logger: silentLogger(), tickMs: 60_000 });
    try {
      await rate.start();
      await send(new Pacer(connect(), p, 50), 10);
      const limited = response(429, { code: 7429, message: 'Rate limit exceeded' }, { retryAfterMs: 1000 });
      // Retry-After: 1 (whole seconds) is "within a second": the schedule holds 2 slots (40 ms at 50/s), the row 1 s.
      expect(await rate.observe(limited, classify(limited))).toEqual({ pauseMs: 0, rowWaitMs: 1000 });
      // The same second refusing on and on: the hold doubles until it is the whole wait, and then the queue pauses.
      // The first 429 also taught a lower rate (9/s from the 10 sent, fewer when a busy machine spread them over
      // more than a second): its slots, and so the holds, are longer. The second refusal's hold is two of them,
      // doubled once: the queue pauses only if that reaches the whole wait.
      const secondHold = 2 * 2 * Math.max(10, 1000 / rate.current.rate);
      const actions = [];
      for (let i = 0; i < 6; i++) actions.push(await rate.observe(limited, classify(limited)));
      const paused = actions.findIndex((a) => a?.pauseMs === 1000);
      expect(actions[0]).toEqual({ pauseMs: secondHold >= 1000 ? 1000 : 0, rowWaitMs: 1000 });
      // seven refusals in one second hold at least 20 ms × 2^6: the whole wait, whatever the rate
      expect(paused).toBeGreaterThanOrEqual(0);
      expect(actions.slice(paused).every((a) => a?.pauseMs === 1000)).toBe(true);
      // An exact wait (backoff_ms: 437 ms) is the time to the window's opening: the queue pauses for it.
      const exact = response(429, { code: 7429, message: 'Rate limit exceeded' }, { retryAfterMs: 437 });
      expect(await rate.observe(exact, classify(exact))).toEqual({ pauseMs: 437, rowWaitMs: 437 });
    } finally {
      await rate.stop();
    }
  });

  it('sends a request that was waiting for its slot when a 429 asked to wait after the pause, and logs it once', async () => {
    const p = prefix('hold');
    const redis = connect();
    const shared = new SharedRate(redis, new RedisKeys(p));
    const pacer = new Pacer(redis, p, 5); // one slot every 200 ms
    expect(await pacer.take()).toBe(true);
    // The second request's slot is ~200 ms away; while it waits, a 429 holds the schedule for 600 ms.
    const waiting = pacer.take();
    const { now } = await shared.counts();
    await shared.counts({ sentAt: now, holdMs: 600, from1: now - 1000, from60: now - 60_000 });
    expect(await waiting).toBe(true);
    const after = await shared.counts();
    // It left after the hold, not at its old slot inside it...
    expect(after.now).toBeGreaterThanOrEqual(now + 600);
    // ...and the log holds the two requests sent (the slot it gave back is not counted).
    expect(after.sent60).toBe(2);
  });

  it('leaves the rate alone for a busy user (429 / 7638), a 529 and a 503, and lowers it for 429s of the limit', async () => {
    const p = prefix('notlimit');
    const rate = new RateController(connect(), p, { configuredRate: 50, logger: silentLogger(), tickMs: 60_000 });
    try {
      await rate.start();
      const busy = response(429, { code: 7638, message: 'request already in progress' }, { retryAfterMs: 1000 });
      const overloaded = response(529, { code: 7638, message: 'request already in progress' }, { retryAfterMs: 1000 });
      const unavailable = response(503, { message: 'try later' }, { retryAfterMs: 1000 });
      for (const answer of [busy, overloaded, unavailable]) {
        const verdict = classify(answer);
        expect(verdict.kind === 'transient' && verdict.rateLimited).toBe(false);
        await rate.observe(answer, verdict);
      }
      const untouched = await readRateState(connect(), new RedisKeys(p));
      expect(untouched?.rate).toBe(50);
      expect(untouched?.lastRateLimitedAt).toBeUndefined();

      const limited = response(429, { code: 7429, message: 'Rate limit exceeded' }, { retryAfterMs: 200 });
      // The first 429 after quiet seconds at a held rate may be jitter at a window's edge: it is noted, and a
      // repeat within 3 s of sending again (after its wait: 429s of requests sent during it are the same episode)
      // cuts the rate (rate/discovery.ts).
      await rate.observe(limited, classify(limited));
      expect((await readRateState(connect(), new RedisKeys(p)))?.lastRateLimitedAt).toBeDefined();
      await sleep(300); // the episode's Retry-After, waited out
      await rate.observe(limited, classify(limited));
      const lowered = await readRateState(connect(), new RedisKeys(p));
      expect(lowered?.rate).toBeLessThan(50);
      expect(lowered?.lastRateLimitedAt).toBeDefined();
    } finally {
      await rate.stop();
    }
  });

  it('takes an announced limit at once, as the cap: RevenueCat-Rate-Limit-Current-Limit is per minute', async () => {
    const p = prefix('announced');
    const rate = new RateController(connect(), p, { configuredRate: 100, logger: silentLogger(), tickMs: 60_000 });
    try {
      await rate.start();
      const ok = response(200, { subscriber: {} }, { rateLimitPerMinute: 1800, rateLimitUsage: 12 });
      await rate.observe(ok, classify(ok));
      expect(rate.current.rate).toBe(30);
      expect(rate.current.ceiling).toBe(30);
      expect(await readRateState(connect(), new RedisKeys(p))).toMatchObject({ rate: 30, announcedPerMinute: 1800 });
    } finally {
      await rate.stop();
    }
  });

  it('describes the learned rate for people', () => {
    const at = Date.parse('2026-11-30T10:00:00Z');
    expect(describeRate({ scope: 'all', rate: 7.5, phase: 'discovering', window: 'second' }, at)).toBe('request rate 7.50/s (discovering the limit)');
    expect(describeRate({ scope: 'all', rate: 97.25, phase: 'holding', window: 'second', learnedAt: '2026-11-30T09:58:00Z', ceiling: 100 }, at)).toBe(
      'request rate 97.3/s (learned 2 min ago, cap 100.0/s)',
    );
    expect(describeRate({ scope: 'all', rate: 20, phase: 'holding', window: 'minute', learnedAt: '2026-11-30T09:59:30Z', probing: 20.8 }, at)).toBe(
      'request rate 20.0/s (learned 30 s ago, a budget of 1200/min, probing 20.8/s)',
    );
    expect(describeRate({ scope: 'all', rate: 50, phase: 'holding', window: 'second', ceiling: 50 }, at)).toBe('request rate 50.0/s (as configured, cap 50.0/s)');
  });

  it('never applies a decision made on a state someone else changed meanwhile', async () => {
    const p = prefix('cas');
    const shared = new SharedRate(connect(), new RedisKeys(p));
    const rate = new RateController(connect(), p, { configuredRate: 20, logger: silentLogger(), tickMs: 60_000 });
    await rate.start();
    await rate.stop();
    const read = await shared.read();
    expect(read).toBeDefined();
    const { state, version } = read!;
    expect(await shared.write({ ...state, rate: 10 }, version)).toBe(true);
    // A second write based on the same (now stale) read is refused, so two processes' decisions never mix.
    expect(await shared.write({ ...state, rate: 15 }, version)).toBe(false);
    expect((await shared.read())?.state.rate).toBe(10);
  });

  it('keeps one learned rate per scope: another scope (one API key, later) learns its own', async () => {
    const p = prefix('scope');
    const logger = silentLogger();
    const all = new RateController(connect(), p, { configuredRate: 40, logger, tickMs: 60_000 });
    const ios = new RateController(connect(), p, { configuredRate: 40, scope: 'ios', logger, tickMs: 60_000 });
    try {
      await all.start();
      await ios.start();
      await send(new Pacer(connect(), p, 39, 5000, 'ios'), 20);
      await ios.rateLimited({ retryAfterMs: 1000, durationMs: 0 });
      const keys = new RedisKeys(p);
      expect((await readRateState(connect(), keys, 'ios'))?.rate).toBe(19);
      expect((await readRateState(connect(), keys))?.rate).toBe(40);
      expect(keys.rateOf('ios')).toBe(`${p}:rate:ios`);
      expect(() => keys.rateOf('appl_secret key')).toThrow(/rate scope/);
    } finally {
      await all.stop();
      await ios.stop();
    }
  });
});
