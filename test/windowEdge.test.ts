// Where a fixed window opens (src/workers/rate/windowEdge.ts): the last brackets from refusals are kept modulo a
// second, the estimate is where most overlap, used once enough agree; a sliding window (no fixed start) never earns
// it. Then, in virtual time (test/support/limitSim.ts), a refusal holds until the window opens: fewer 429s than
// doubling holds, and no less use.
import { describe, expect, it } from 'vitest';
import { onJoin, type RateState } from '../src/workers/rate/discovery.js';
import { estimateEdge, KEPT, LATENESS_MS, learnEdge, MAX_BRACKET_MS, MAX_WIDTH_MS, MIN_VOTES, nextWindowStart } from '../src/workers/rate/windowEdge.js';
import { simulate, use } from './support/limitSim.js';

const learnAll = (brackets: [number, number][], from = ''): string => brackets.reduce((e, [a, b]) => learnEdge(e, { from: a, to: b }) ?? e, from);
const stateWith = (edges: string): RateState => ({ ...onJoin(undefined, 0, { configured: undefined }).next, phase: 'hold', edges });
const L = LATENESS_MS;

describe('learnEdge and estimateEdge', () => {
  it('keeps brackets modulo a second, widened by a busy machine’s lateness, and finds where they overlap', () => {
    const edges = learnAll([
      [10_400, 10_460],
      [27_430, 27_470],
      [31_445, 31_520],
    ]);
    expect(edges).toBe(`${400 - L}+${60 + 2 * L} ${430 - L}+${40 + 2 * L} ${445 - L}+${75 + 2 * L}`);
    // All three hold [435, 480): the latest start and the earliest end, each widened.
    expect(estimateEdge(edges)).toEqual({ lo: 445 - L, width: 460 + L - (445 - L), votes: 3, of: 3 });
  });

  it('handles a window that opens around the whole second (the arcs wrap)', () => {
    const e = estimateEdge(
      learnAll([
        [5_980, 6_030],
        [8_995, 9_040],
        [12_970, 13_004],
      ]),
    );
    expect(e).toEqual({ lo: 995 - L, width: 4 + L - (-5 - L), votes: 3, of: 3 });
  });

  it('an outlier does not move the estimate: it just does not vote', () => {
    const e = estimateEdge(
      learnAll([
        [1_100, 1_140],
        [2_110, 2_150],
        [3_600, 3_620],
        [4_105, 4_130],
      ]),
    );
    expect(e).toMatchObject({ lo: 110 - L, votes: 3, of: 4 });
  });

  it('keeps the last brackets only, so a start that moved is learned again', () => {
    let edges = learnAll(Array.from({ length: KEPT }, (_, i): [number, number] => [i * 1000 + 100, i * 1000 + 130]));
    expect(estimateEdge(edges)).toMatchObject({ lo: 100 - L, votes: KEPT });
    edges = learnAll(
      Array.from({ length: KEPT - 2 }, (_, i): [number, number] => [50_000 + i * 1000 + 600, 50_000 + i * 1000 + 630]),
      edges,
    );
    expect(estimateEdge(edges)).toMatchObject({ lo: 600 - L, votes: KEPT - 2, of: KEPT });
  });

  it('ignores brackets of about a second or more (they say nothing), or empty ones', () => {
    expect(learnEdge('', { from: 1000, to: 1000 + MAX_BRACKET_MS })).toBeUndefined();
    expect(learnEdge('', { from: 1000, to: 1000 + MAX_BRACKET_MS - 2 * L })).toBe(`${990}+${MAX_BRACKET_MS}`);
    expect(learnEdge('', { from: 1000, to: 1000 })).toBeUndefined();
    expect(estimateEdge('')).toBeUndefined();
  });
});

describe('nextWindowStart', () => {
  const learned = learnAll([
    [1_440, 1_450],
    [2_445, 2_450],
    [3_430, 3_450],
  ]);
  const end = 450 + L;

  it('is the end of the estimate after the refused request, within a second', () => {
    expect(nextWindowStart(stateWith(learned), 50_100)).toBe(50_000 + end);
    expect(nextWindowStart(stateWith(learned), 50_450)).toBe(50_000 + end);
    // Refused well after this second's window opened (the window filled early): the next one.
    expect(nextWindowStart(stateWith(learned), 50_700)).toBe(51_000 + end);
    // Refused right after the estimated start: the estimate is more likely early than the window full already, and
    // holding to the next start would leave a whole window unsent: not known.
    expect(nextWindowStart(stateWith(learned), 50_000 + end + 20)).toBe(0);
  });

  it('is 0 (not known) with too few or too scattered brackets, too wide an estimate, or a per-minute budget', () => {
    const two = learnAll([
      [1_440, 1_450],
      [2_445, 2_450],
    ]);
    expect(nextWindowStart(stateWith(two), 50_100)).toBe(0);
    const scattered = learnAll(
      [
        [1_440, 1_450],
        [2_445, 2_450],
        [3_430, 3_450],
        [4_100, 4_110],
        [5_700, 5_710],
        [6_900, 6_910],
      ],
      '',
    );
    expect(estimateEdge(scattered)).toMatchObject({ votes: 3, of: 6 });
    expect(nextWindowStart(stateWith(scattered), 50_100)).toBe(0);
    const wide = learnAll([
      [1_300, 1_300 + MAX_WIDTH_MS],
      [2_310, 2_310 + MAX_WIDTH_MS],
      [3_305, 3_305 + MAX_WIDTH_MS],
    ]);
    expect(estimateEdge(wide)?.width).toBeGreaterThan(MAX_WIDTH_MS);
    expect(nextWindowStart(stateWith(wide), 50_100)).toBe(0);
    expect(nextWindowStart({ ...stateWith(learned), window: 60 }, 50_100)).toBe(0);
    expect(nextWindowStart(undefined, 50_100)).toBe(0);
    expect(nextWindowStart(stateWith(''), 50_100)).toBe(0);
  });
});

describe('against simulated limits', () => {
  // The API's windows open 437 ms into each second of its clock; requests reach it half a latency (25 ms) after
  // they leave, so in the client's send times the windows open at 412 ms.
  const server = { limit: 50, windowMs: 1000, kind: 'fixed' as const, originMs: 437 };

  it('learns where a fixed window opens', () => {
    const r = simulate({ server, durationMs: 300_000, jitterMs: 2 });
    const e = estimateEdge(r.final.edges);
    expect(e?.votes).toBeGreaterThanOrEqual(MIN_VOTES);
    expect(e?.width).toBeLessThanOrEqual(MAX_WIDTH_MS);
    // The estimate holds the true start (412 ms), allowing for the latency's ± jitter.
    const lo = (e?.lo ?? NaN) - 2;
    const hi = (e?.lo ?? NaN) + (e?.width ?? NaN) + 2;
    expect(412 >= lo && 412 <= hi).toBe(true);
    expect(r.edgeHolds).toBeGreaterThan(0);
  });

  it('a refusal held until the window opens costs fewer 429s than doubling holds, and no use', () => {
    // Others' traffic takes half the limit for 20 s of every minute: each fall overflows windows until followed.
    const limit = (t: number): number => ((t / 1000) % 60 >= 40 ? 25 : 50);
    const opts = { server: { ...server, limit }, durationMs: 300_000, jitterMs: 5 };
    const learned = simulate(opts);
    const doubling = simulate({ ...opts, edgeUnknown: true });
    const limitPerSecond = (s: number): number => limit(s * 1000);
    expect(learned.edgeHolds).toBeGreaterThan(10);
    expect(learned.limited).toBeLessThan(doubling.limited);
    expect(learned.limited / learned.sent).toBeLessThanOrEqual(0.01);
    expect(use(learned.okPerSecond, limitPerSecond, 30, 299)).toBeGreaterThanOrEqual(use(doubling.okPerSecond, limitPerSecond, 30, 299) - 0.005);
  });

  it('never trusts a start for a sliding window', () => {
    const r = simulate({ server: { limit: 50, windowMs: 1000, kind: 'sliding' }, durationMs: 300_000, jitterMs: 5, sendJitterMs: 10 });
    expect(r.edgeHolds).toBe(0);
  });
});
