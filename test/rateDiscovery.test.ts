// The discovery rules (src/workers/rate/discovery.ts) against simulated limits (test/support/limitSim.ts), in
// virtual time: minutes of traffic per test, without Redis or timers, the same every run. What the issue asks of
// discovery: find the limit from a safe start, settle just under it, follow it down at once and up again, learn a
// per-minute budget and spread it evenly, and never exceed --rate.
import { describe, expect, it } from 'vitest';
import { DEFAULT_DISCOVERY, onAnnounced, onJoin, onRateLimited, onTick, paceAim, type RateState } from '../src/workers/rate/discovery.js';
import { secondsTo, simulate, use, type SimLimit } from './support/limitSim.js';

/** What the pacer sends for a learned rate: the headroom's share, in whole requests per second (pacer.ts). */
const pace = (rate: number): number => paceAim(rate * DEFAULT_DISCOVERY.headroom);
const share = (r: { limited: number; sent: number }): number => r.limited / r.sent;
/** The learned rate at the end, a probe in progress aside. */
const settled = (s: RateState): number => (s.probeFrom > 0 ? s.probeFrom : s.rate);

describe('discovery in one-second windows', () => {
  for (const kind of ['sliding', 'fixed'] as const) {
    for (const limit of [10, 50, 200]) {
      it(`finds ${limit}/s (${kind} window) from a safe start, within 30 s, and holds just under it`, () => {
        const server: SimLimit = { limit, windowMs: 1000, kind };
        const r = simulate({ server, durationMs: 180_000, jitterMs: 5 });
        // Settled: the 5-second average of successes reaches 90% of the limit within 30 s.
        expect(secondsTo(r.okPerSecond, () => limit)).toBeLessThanOrEqual(30);
        // What is sent stays at or under the limit, and the learned rate is within [0.8, 1.0] of it.
        expect(pace(settled(r.final))).toBeLessThanOrEqual(limit * 1.01);
        expect(settled(r.final)).toBeGreaterThanOrEqual(limit * 0.8);
        expect(r.ratePerSecond.slice(30).every((rate) => rate >= limit * 0.8 && pace(rate) <= limit * 1.1)).toBe(true);
        // Steady state: at least 94% of the limit used; 429s about 1% of requests at most.
        expect(use(r.okPerSecond, () => limit, 30, 179)).toBeGreaterThanOrEqual(0.94);
        expect(share(r)).toBeLessThanOrEqual(0.012);
      });
    }
  }

  it('starts at 5/s when nothing is known, and climbs by half each second while nothing is refused', () => {
    const r = simulate({ server: { limit: 1000, windowMs: 1000, kind: 'sliding' }, durationMs: 6000 });
    expect(r.ratePerSecond[0]).toBe(DEFAULT_DISCOVERY.startRate);
    expect(r.limited).toBe(0);
    const climbs = r.decisions.filter((d) => d.reason === 'no 429 yet: climbing').map((d) => d.rate);
    expect(climbs.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < climbs.length; i++) expect((climbs[i] as number) / (climbs[i - 1] as number)).toBeCloseTo(1.5, 5);
  });

  it('with an exact wait (backoff_ms) measures even a fixed window at its first 429', () => {
    const r = simulate({ server: { limit: 80, windowMs: 1000, kind: 'fixed', retryAfter: 'ms' }, durationMs: 20_000 });
    const found = r.decisions.find((d) => d.reason === 'limit found');
    expect(found?.rate).toBe(80);
    expect(use(r.okPerSecond, () => 80, 10, 19)).toBeGreaterThanOrEqual(0.95);
  });

  it('probes gently: a raised limit is found again, and probes that fail space out', () => {
    const limit = (t: number): number => (t < 60_000 ? 50 : 80);
    const r = simulate({ server: { limit, windowMs: 1000, kind: 'sliding' }, durationMs: 180_000 });
    // Before the raise, probes are refused with ever longer gaps (30 s, then 60 s): few of them.
    const before = r.decisions.filter((d) => d.t < 60_000 && d.reason.startsWith('probing')).length;
    expect(before).toBeLessThanOrEqual(3);
    // After it, the new limit is reached within two probe gaps and held.
    const back = secondsTo(r.okPerSecond, (s) => limit(s * 1000), 0.9, 5, 60);
    expect(back).toBeLessThanOrEqual(90);
    expect(pace(settled(r.final))).toBeLessThanOrEqual(80 * 1.01);
    expect(settled(r.final)).toBeGreaterThanOrEqual(80 * 0.9);
  });
});

describe('a limit that halves and comes back', () => {
  const limit = (t: number): number => (t >= 40_000 && t < 90_000 ? 50 : 100);
  for (const kind of ['sliding', 'fixed'] as const) {
    it(`follows the halving within 10 s and finds the old limit again (${kind} window)`, () => {
      const r = simulate({ server: { limit, windowMs: 1000, kind }, durationMs: 150_000, jitterMs: 5 });
      // Down: within 10 s of the halving the learned rate paces at or under the new limit, and stays there but
      // for the short probes toward the level held before (a second or two each).
      const down = r.ratePerSecond.slice(50, 90);
      expect(down.filter((rate) => pace(rate) <= 50 * 1.02).length).toBeGreaterThanOrEqual(down.length * 0.8);
      const followed = r.ratePerSecond.slice(40).findIndex((rate) => pace(rate) <= 50 * 1.02);
      expect(followed).toBeLessThanOrEqual(10);
      // While halved, most of the lower limit is still used.
      expect(use(r.okPerSecond, (s) => limit(s * 1000), 50, 90)).toBeGreaterThanOrEqual(0.7);
      // Up again: 90% of the restored limit within 35 s.
      expect(secondsTo(r.okPerSecond, (s) => limit(s * 1000), 0.9, 5, 90)).toBeLessThanOrEqual(35);
      expect(share(r)).toBeLessThanOrEqual(0.015);
    });
  }
});

describe('per-minute budgets', () => {
  for (const kind of ['sliding', 'fixed'] as const) {
    it(`learns a 1,200/min budget (${kind} windows) after the first burst and spreads it evenly`, () => {
      const r = simulate({ server: { limit: 1200, windowMs: 60_000, kind }, durationMs: 300_000, jitterMs: 5 });
      expect(r.final.window).toBe(60);
      // Even pacing at the budget: 1200/60 = 20/s, never more (a burst would be refused for up to a minute).
      expect(pace(settled(r.final))).toBeLessThanOrEqual(20 * 1.01);
      expect(settled(r.final)).toBeGreaterThanOrEqual(20 * 0.9);
      // Settled within 2 minutes (a minute's average at 90% of the budget), then at least 95% of it used.
      expect(secondsTo(r.okPerSecond, () => 20, 0.9, 60)).toBeLessThanOrEqual(120);
      expect(use(r.okPerSecond, () => 20, 120, 299)).toBeGreaterThanOrEqual(0.95);
      expect(share(r)).toBeLessThanOrEqual(0.01);
      // After the budget is learned, each second holds about a 60th of it: no more bursts.
      const late = r.okPerSecond.slice(150, 299);
      expect(Math.max(...late)).toBeLessThanOrEqual(21);
    });
  }
});

describe('--rate', () => {
  it('caps discovery: never above it, even when the API would allow more', () => {
    const r = simulate({ server: { limit: 200, windowMs: 1000, kind: 'sliding' }, durationMs: 120_000, configured: 60 });
    expect(Math.max(...r.okPerSecond)).toBeLessThanOrEqual(60);
    expect(r.limited).toBe(0);
    expect(use(r.okPerSecond, () => 60, 5, 119)).toBeGreaterThanOrEqual(0.97);
  });

  it('equal to the limit keeps today’s figures: at least 0.97 of it, no 429', () => {
    for (const kind of ['sliding', 'fixed'] as const) {
      const r = simulate({ server: { limit: 100, windowMs: 1000, kind }, durationMs: 200_000, configured: 100 });
      expect(use(r.okPerSecond, () => 100, 0, 199)).toBeGreaterThanOrEqual(0.97);
      expect(r.limited).toBe(0);
    }
  });

  it('under the limit, a 429 still lowers this process’s rate and probes bring it back to the cap', () => {
    const limit = (t: number): number => (t >= 20_000 && t < 30_000 ? 30 : 100);
    const r = simulate({ server: { limit, windowMs: 1000, kind: 'sliding' }, durationMs: 90_000, configured: 60 });
    expect(Math.min(...r.ratePerSecond.slice(22, 30))).toBeLessThanOrEqual(31);
    expect(r.ratePerSecond[r.ratePerSecond.length - 1]).toBe(60);
  });
});

describe('the rules themselves', () => {
  const now = 1_800_000_000_000;
  const held = (rate: number): RateState => ({ ...onJoin(undefined, now - 100_000, { configured: undefined }).next, phase: 'hold', rate, lo: rate, learnedAt: now - 50_000 });

  it('a joining process starts from a learned rate, not from scratch', () => {
    const learned = held(73);
    const joined = onJoin(learned, now, { configured: undefined }).next;
    expect(joined.rate).toBe(73);
    expect(joined.phase).toBe('hold');
    // Older than the trust period: discovery starts over.
    const stale = onJoin({ ...learned, learnedAt: now - DEFAULT_DISCOVERY.trustMs - 1 }, now, { configured: undefined }).next;
    expect(stale.rate).toBe(DEFAULT_DISCOVERY.startRate);
    expect(stale.phase).toBe('start');
    // With --rate and nothing learned, the rate starts at --rate.
    expect(onJoin(undefined, now, { configured: 40 }).next).toMatchObject({ rate: 40, phase: 'hold' });
  });

  it('429s for requests sent before the last decision are one episode: acted on once', () => {
    const state = held(100);
    const first = onRateLimited(state, { now, sentAt: now - 50, retryAfterMs: 1000, admitted1: 60, admitted60: 5000 }, { configured: undefined });
    expect(first?.next.rate).toBe(60);
    const again = onRateLimited(first!.next, { now: now + 5, sentAt: now - 45, retryAfterMs: 1000, admitted1: 30, admitted60: 5000 }, { configured: undefined });
    expect(again?.next.rate).toBe(60);
  });

  it('a probe the client could not keep up with proves nothing: the rate goes back to where it was', () => {
    const probing = { ...held(100), rate: 120, probeFrom: 100, probeAt: now - 5000, nextProbe: now - 5000 };
    // The pacer asked for 117/s for 5 s; only ~98/s went out (the CPU was short), and nothing was refused.
    const starved = onTick(probing, now, { sent1: 98, sinceProbe: 490 }, { configured: undefined });
    expect(starved?.next.rate).toBe(100);
    expect(starved?.reason).toMatch(/inconclusive/);
    const kept = onTick(probing, now, { sent1: 117, sinceProbe: 585 }, { configured: undefined });
    // Held: what it proved is what it sent (117/s a second, whole requests), held from now on a request under it.
    expect(pace(kept?.next.rate ?? NaN)).toBe(116);
    expect(kept?.next.lo).toBe(kept?.next.rate);
    expect(kept?.next.rate).toBeLessThanOrEqual(120);
  });

  it('a long Retry-After switches to a per-minute budget: what was admitted in the minute, spread over it', () => {
    const state = { ...onJoin(undefined, now, { configured: undefined }).next, rate: 300 };
    const d = onRateLimited(state, { now, sentAt: now - 50, retryAfterMs: 41_000, admitted1: 290, admitted60: 1200 }, { configured: undefined });
    expect(d?.next.window).toBe(60);
    expect(d?.next.rate).toBe(20);
  });

  it('an announced limit sets the rate at once and caps it; a tick never climbs past it', () => {
    const state = onJoin(undefined, now, { configured: undefined }).next;
    const announced = onAnnounced(state, now, 900);
    expect(announced?.next.rate).toBe(15);
    expect(announced?.next.phase).toBe('hold');
    const tick = onTick({ ...announced!.next, nextProbe: 0 }, now + 60_000, { sent1: 15 }, { configured: undefined });
    expect(tick?.next.rate ?? 15).toBeLessThanOrEqual(15);
    // Other clients' share of the announced limit (Current-Usage beyond our own requests) is left to them.
    const withOthers = onTick({ ...announced!.next, rate: 15 }, now + 1000, { sent1: 15 }, { configured: undefined, usage: { perMinute: 900, usage: 900, oursLastMinute: 600 } });
    expect(withOthers?.next.rate).toBe(10);
  });
});

describe('whole requests a second (pacer.ts, paceAim)', () => {
  it('plans whole requests from about 50/s, and a probe sends at least one more a second than the rate held', () => {
    expect(paceAim(49.5)).toBe(49);
    expect(paceAim(98.9)).toBe(98);
    // Below, rounding down would cost more than the headroom: the pace as it is.
    expect(paceAim(9.8)).toBe(9.8);
    const held50 = { ...onJoin(undefined, 0, { configured: undefined }).next, phase: 'hold' as const, rate: 50, lo: 50, nextProbe: 0, learnedAt: 1 };
    const probe = onTick(held50, 1000, { sent1: 49 }, { configured: undefined });
    expect(probe?.reason).toMatch(/probing/);
    expect(paceAim(probe!.next.rate * DEFAULT_DISCOVERY.headroom)).toBeGreaterThanOrEqual(51);
  });

  it('a probe that held but sent no more than the rate held proves nothing: the rate stays, the next probe waits longer', () => {
    const state = {
      ...onJoin(undefined, 0, { configured: undefined }).next,
      phase: 'hold' as const,
      rate: 50.5,
      lo: 49,
      probeFrom: 49,
      probeAt: 0,
      gap: 30_000,
      step: 0.04,
      learnedAt: 1,
    };
    // 50.5 × 0.98 = 49.49: 49 whole requests a second, what 49 already sent.
    const d = onTick(state, 5000, { sent1: 49, sinceProbe: 245 }, { configured: undefined });
    expect(d?.reason).toMatch(/sent no more/);
    expect(d?.next.rate).toBe(49);
    expect(d?.next.gap).toBe(60_000);
    expect(d?.next.nextProbe).toBe(65_000);
  });

  it('holds at 50/s in fixed windows over 10 minutes at 0.97 of the limit, even when requests leave up to 30 ms late', () => {
    const r = simulate({ server: { limit: 50, windowMs: 1000, kind: 'fixed' }, durationMs: 600_000, jitterMs: 5, sendJitterMs: 30 });
    expect(use(r.okPerSecond, () => 50, 30, 599)).toBeGreaterThanOrEqual(0.965);
    expect(share(r)).toBeLessThanOrEqual(0.01);
  });
});

describe("a limit shared with the live app's traffic", () => {
  // 50/s of which others take half for 20 s every minute (the sandbox's `bursts:0.5:0:60:20`).
  const limit = (t: number): number => (t % 60_000 >= 0 && t % 60_000 < 20_000 && t >= 60_000 ? 25 : 50);
  for (const kind of ['sliding', 'fixed'] as const) {
    it(`follows bursts of others' traffic (${kind} windows): down within 10 s, up within 30 s, 429s ≤ 1%`, () => {
      const r = simulate({ server: { limit, windowMs: 1000, kind }, durationMs: 300_000, jitterMs: 5, sendJitterMs: 10 });
      for (const fall of [60, 120, 180, 240]) {
        const followed = r.ratePerSecond.slice(fall).findIndex((rate) => pace(rate) <= 25 * 1.02);
        expect(followed, `after the fall at ${fall} s`).toBeGreaterThanOrEqual(0);
        expect(followed, `after the fall at ${fall} s`).toBeLessThanOrEqual(10);
        expect(
          secondsTo(r.okPerSecond, (s) => limit(s * 1000), 0.9, 3, fall + 20),
          `after the rise at ${fall + 20} s`,
        ).toBeLessThanOrEqual(30);
      }
      expect(share(r)).toBeLessThanOrEqual(0.01);
    });
  }
});
