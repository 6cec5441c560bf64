// Where a fixed window opens (src/workers/rate/windowEdge.ts): brackets from refusals narrow an estimate modulo a
// second; it is used once enough agree, and a sliding window (no fixed start) never earns it. Then, in virtual time
// (test/support/limitSim.ts), a refusal holds until the window opens: fewer 429s than doubling holds, no use lost.
import { describe, expect, it } from 'vitest';
import { DEFAULT_DISCOVERY, onJoin, type RateState } from '../src/workers/rate/discovery.js';
import { learnEdge, MAX_WIDTH_MS, MIN_VOTES, nextWindowStart, type WindowEdge } from '../src/workers/rate/windowEdge.js';
import { simulate, use } from './support/limitSim.js';

const none: WindowEdge = { edgeLo: 0, edgeWidth: 0, edgeVotes: 0 };
const learnAll = (brackets: [number, number][], from: WindowEdge = none): WindowEdge => brackets.reduce<WindowEdge>((e, [a, b]) => learnEdge(e, { from: a, to: b }) ?? e, from);
const stateWith = (edge: WindowEdge): RateState => ({ ...onJoin(undefined, 0, { configured: undefined }).next, phase: 'hold', ...edge });

describe('learnEdge', () => {
  it('intersects brackets from different seconds modulo a second', () => {
    const e = learnAll([
      [10_400, 10_460],
      [27_430, 27_470],
      [31_445, 31_520],
    ]);
    expect(e.edgeVotes).toBe(3);
    expect(e.edgeLo).toBeCloseTo(445, 6);
    expect(e.edgeWidth).toBeCloseTo(15, 6);
  });

  it('handles a window that opens around the whole second (the arc wraps)', () => {
    const e = learnAll([
      [5_980, 6_030],
      [8_995, 9_040],
      [12_970, 13_004],
    ]);
    expect(e.edgeVotes).toBe(3);
    expect(e.edgeLo).toBeCloseTo(995, 6);
    expect(e.edgeWidth).toBeCloseTo(9, 6);
  });

  it('ignores brackets a second or more wide, or empty', () => {
    expect(learnEdge(none, { from: 1000, to: 2000 })).toBeUndefined();
    expect(learnEdge(none, { from: 1000, to: 1000 })).toBeUndefined();
  });

  it('a contradiction costs a vote, and replaces the estimate when none is left', () => {
    const e = learnAll([
      [1_100, 1_140],
      [2_110, 2_150],
    ]);
    expect(e.edgeVotes).toBe(2);
    const once = learnEdge(e, { from: 3_600, to: 3_620 }) as WindowEdge;
    expect(once).toEqual({ ...e, edgeVotes: 1 });
    const twice = learnEdge(once, { from: 4_600, to: 4_620 }) as WindowEdge;
    expect(twice).toEqual({ edgeLo: 600, edgeWidth: 20, edgeVotes: 1 });
  });
});

describe('nextWindowStart', () => {
  const learned: WindowEdge = { edgeLo: 440, edgeWidth: 20, edgeVotes: MIN_VOTES };

  it('is the end of the estimate after the refused request, within a second', () => {
    expect(nextWindowStart(stateWith(learned), 50_100)).toBe(50_460);
    expect(nextWindowStart(stateWith(learned), 50_450)).toBe(50_460);
    // Refused well after this second's window opened (the window filled early): the next one.
    expect(nextWindowStart(stateWith(learned), 50_700)).toBe(51_460);
    // Refused right after the estimated start: the estimate is more likely early than the window full already, and
    // holding to the next start would leave a whole window unsent: not known.
    expect(nextWindowStart(stateWith(learned), 50_480)).toBe(0);
  });

  it('is 0 (not known) with too few votes, too wide an estimate, or a per-minute budget', () => {
    expect(nextWindowStart(stateWith({ ...learned, edgeVotes: MIN_VOTES - 1 }), 50_100)).toBe(0);
    expect(nextWindowStart(stateWith({ ...learned, edgeWidth: MAX_WIDTH_MS + 1 }), 50_100)).toBe(0);
    expect(nextWindowStart({ ...stateWith(learned), window: 60 }, 50_100)).toBe(0);
    expect(nextWindowStart(undefined, 50_100)).toBe(0);
  });
});

describe('against simulated limits', () => {
  // The API's windows open 437 ms into each second of its clock; requests reach it half a latency (25 ms) after
  // they leave, so in the client's send times the windows open at 412 ms.
  const server = { limit: 50, windowMs: 1000, kind: 'fixed' as const, originMs: 437 };

  it('learns where a fixed window opens, to within a few ms', () => {
    const r = simulate({ server, durationMs: 300_000, jitterMs: 2 });
    expect(r.final.edgeVotes).toBeGreaterThanOrEqual(MIN_VOTES);
    expect(r.final.edgeWidth).toBeLessThanOrEqual(MAX_WIDTH_MS);
    // The estimate holds the true start (412 ms), allowing for the latency's ± jitter.
    const lo = r.final.edgeLo - 3;
    const hi = r.final.edgeLo + r.final.edgeWidth + 3;
    expect(412 >= lo && 412 <= hi).toBe(true);
  });

  it('a refusal held until the window opens costs fewer 429s than doubling holds, and no use', () => {
    // Others' traffic takes half the limit for 20 s of every minute: each fall overflows windows until followed.
    const limit = (t: number): number => ((t / 1000) % 60 >= 40 ? 25 : 50);
    const opts = { server: { ...server, limit }, durationMs: 300_000, jitterMs: 5 };
    const learned = simulate(opts);
    // The same run with the start never trusted: the doubling holds alone.
    const doubling = simulate({ ...opts, edgeVotesNeeded: Infinity });
    const limitPerSecond = (s: number): number => limit(s * 1000);
    expect(learned.limited).toBeLessThan(doubling.limited);
    expect(learned.limited / learned.sent).toBeLessThanOrEqual(0.01);
    expect(use(learned.okPerSecond, limitPerSecond, 30, 299)).toBeGreaterThanOrEqual(use(doubling.okPerSecond, limitPerSecond, 30, 299) - 0.005);
  });

  it('never trusts a start for a sliding window', () => {
    const r = simulate({ server: { limit: 50, windowMs: 1000, kind: 'sliding' }, durationMs: 300_000, jitterMs: 5, sendJitterMs: 10 });
    expect(r.edgeHolds).toBe(0);
  });
});

it('the discovery defaults leave the edge unknown until learned', () => {
  const s = onJoin(undefined, 0, { configured: undefined }, DEFAULT_DISCOVERY).next;
  expect(s.edgeVotes).toBe(0);
  expect(nextWindowStart(s, 1234)).toBe(0);
});
