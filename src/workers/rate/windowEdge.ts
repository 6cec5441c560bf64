// Where a fixed one-second window begins, learned from the API's refusals, so that a 429 holds every process's
// schedule until exactly then. Pure functions of the shared state (discovery.ts RateState) and of what the pacer's
// log says around a refusal (pace-1.lua observe); no Redis, no clock.
//
// Why. RevenueCat's Retry-After is in whole seconds, so a one-second window's 429 says "1" whether the window
// opens again in 3 ms or in 900. Without knowing which, a refusal is held for two slots, doubling while the
// refusals go on (discovery.ts edgeHoldMs): each doubling that ends before the window opens is one more refused
// request (429s the API counts against us), and the last one ends up to its own length after the window opened
// (requests of the new window never sent). In a fixed window every request sent before the window opens again is
// refused and nothing is lost by not sending it, so a hold that ends when the window opens is the best there is.
//
// How. A request the API admitted after one it refused, with nothing in between but refusals, was sent after a
// window opened: a window's start lies between the two sends (the bracket). Times are by send time on Redis's
// clock, the frame the pacer plans in; the server's own clock and the network's delay shift every bracket alike,
// so they cancel. Brackets from different seconds are intersected modulo a second; the estimate is used once three
// agree and it is narrower than `MAX_WIDTH_MS`. A bracket that contradicts the estimate costs it a vote, and
// replaces it when no vote is left: a sliding window (no fixed start) contradicts itself and is never used, and a
// window whose start moved is learned again.
import type { RateState } from './discovery.js';

const SECOND = 1000;
/** an estimate wider than this costs more sending time than the doubling holds it replaces */
export const MAX_WIDTH_MS = 120;
/** brackets that must agree before the estimate is trusted */
export const MIN_VOTES = 3;
/** the most a request leaves after its planned slot (a busy event loop): the bracket's end is widened by it */
export const SEND_LATENESS_MS = 10;
/**
 * A refusal this soon after the estimated start is taken as the estimate being early, not as a window full within
 * this long: holding until the next start would leave a whole window unsent, so the doubling holds decide instead.
 */
export const EARLY_GUARD_MS = 100;

/** A window's start lies after `from` and no later than `to` (send times, ms on Redis's clock). */
export interface EdgeBracket {
  from: number;
  to: number;
}

/** The estimate as stored: the start lies in [lo, lo + width) modulo a second; `votes` 0 = nothing learned. */
export type WindowEdge = Pick<RateState, 'edgeLo' | 'edgeWidth' | 'edgeVotes'>;

const mod = (x: number): number => ((x % SECOND) + SECOND) % SECOND;

/**
 * The estimate after one more bracket, or undefined when the bracket says nothing (a second or more wide, or
 * empty). Intersecting keeps what both allow; a contradiction costs a vote, and with none left the bracket starts
 * a new estimate.
 */
export function learnEdge(current: WindowEdge, bracket: EdgeBracket): WindowEdge | undefined {
  const width = bracket.to - bracket.from;
  if (!(width > 0) || width >= SECOND) return undefined;
  const fresh: WindowEdge = { edgeLo: mod(bracket.from), edgeWidth: width, edgeVotes: 1 };
  if (current.edgeVotes <= 0 || current.edgeWidth <= 0) return fresh;
  // The bracket as an arc starting `d` after the estimate's start; it may wrap past the second.
  const d = mod(bracket.from - current.edgeLo);
  let best: [number, number] | undefined;
  for (const shift of [0, -SECOND]) {
    const start = Math.max(0, d + shift);
    const end = Math.min(current.edgeWidth, d + shift + width);
    if (end > start && (!best || end - start > best[1] - best[0])) best = [start, end];
  }
  if (!best) return current.edgeVotes > 1 ? { ...current, edgeVotes: current.edgeVotes - 1 } : fresh;
  return { edgeLo: mod(current.edgeLo + best[0]), edgeWidth: best[1] - best[0], edgeVotes: current.edgeVotes + 1 };
}

/**
 * When the window after a refused request opens at the latest (ms, Redis's clock), or 0 when that is not known
 * well enough (a per-minute budget, too few or too wide brackets). The refused request was sent at `sentAt`.
 */
export function nextWindowStart(state: RateState | undefined, sentAt: number): number {
  if (!state || state.window !== 1 || state.edgeVotes < MIN_VOTES || !(state.edgeWidth > 0) || state.edgeWidth > MAX_WIDTH_MS) return 0;
  const end = state.edgeLo + state.edgeWidth;
  if (mod(sentAt - end) < EARLY_GUARD_MS) return 0;
  return sentAt + mod(end - sentAt);
}
