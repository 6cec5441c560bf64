// Where a fixed one-second window begins, learned from the API's refusals, so that a 429 holds every process's
// schedule until exactly then. Pure functions of the shared state (discovery.ts RateState) and of what the pacer's
// log says around a refusal (pace-1.lua observe); no Redis, no clock.
//
// Why. RevenueCat's Retry-After is in whole seconds, so a one-second window's 429 says "1" whether the window
// opens again in 3 ms or in 900. Without knowing which, a refusal is held for two slots, doubling while the
// refusals go on (discovery.ts edgeHoldMs): each doubling that ends before the window opens is one more refused
// request (429s the API counts against us), and the last one ends up to its own length after the window opened
// (requests of the new window never sent), or becomes a whole second's pause. In a fixed window every request sent
// before the window opens again is refused and nothing is lost by not sending it, so a hold that ends when the
// window opens is the best there is.
//
// How. A request the API admitted after one it refused, with nothing in between but refusals, was sent after a
// window opened: a window's start lies between the two sends (a bracket). Times are send times on Redis's clock,
// the frame the pacer plans in; the server's own clock and the network's delay shift every bracket alike, so they
// cancel. A busy machine does not: a request leaves some ms after its slot and reaches a busy server some ms late,
// so brackets are widened by that much and some are still wrong. The last `KEPT` brackets are kept, modulo a
// second, and the estimate is where most of them overlap: trusted once at least `MIN_VOTES` and most of those
// kept agree, and only while narrower than `MAX_WIDTH_MS`. A sliding window has no start: its brackets scatter
// and never agree. A window whose start moved is learned again as new brackets replace the old.
import type { RateState } from './discovery.js';

const SECOND = 1000;
/** brackets kept: old enough ones give way, so a start that moved is followed */
export const KEPT = 8;
/** an estimate wider than this costs more sending time than the doubling holds it replaces */
export const MAX_WIDTH_MS = 120;
/** a bracket wider than this (its widening included) is not kept */
export const MAX_BRACKET_MS = 990;
/** brackets that must agree before the estimate is trusted (and more than half of those kept) */
export const MIN_VOTES = 3;
/** the most a request leaves after its slot, or reaches the API later than its fellows: both ends are widened by it */
export const LATENESS_MS = 10;
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

/** Where most kept brackets agree the window starts: in [lo, lo + width) modulo a second. */
export interface EdgeEstimate {
  lo: number;
  width: number;
  /** brackets that agree */
  votes: number;
  /** brackets kept */
  of: number;
}

interface Arc {
  lo: number;
  width: number;
}

const mod = (x: number): number => ((x % SECOND) + SECOND) % SECOND;

/** The kept brackets, as stored ("lo+width lo+width …", whole ms modulo a second). */
function arcsOf(edges: string): Arc[] {
  const arcs: Arc[] = [];
  for (const part of edges.split(' ')) {
    const [lo, width] = part.split('+').map(Number);
    if (lo !== undefined && width !== undefined && Number.isFinite(lo) && width > 0) arcs.push({ lo, width });
  }
  return arcs;
}

/**
 * The kept brackets after one more (the oldest given up beyond `KEPT`), or undefined when the bracket says too
 * little (wider than `MAX_BRACKET_MS`, or empty).
 */
export function learnEdge(edges: string, bracket: EdgeBracket): string | undefined {
  const from = Math.floor(bracket.from - LATENESS_MS);
  const width = Math.ceil(bracket.to + LATENESS_MS) - from;
  // A bracket of about a second would vote for all of it: it says nothing.
  if (!(bracket.to > bracket.from) || width > MAX_BRACKET_MS) return undefined;
  const arcs = [...arcsOf(edges), { lo: mod(from), width }].slice(-KEPT);
  return arcs.map((a) => `${a.lo}+${a.width}`).join(' ');
}

/** Where most kept brackets overlap, undefined when none is kept. */
export function estimateEdge(edges: string): EdgeEstimate | undefined {
  const arcs = arcsOf(edges);
  let best: EdgeEstimate | undefined;
  // The deepest overlap begins where some arc begins: count, at each arc's start, the arcs that hold it.
  for (const start of arcs) {
    let votes = 0;
    let end = SECOND;
    for (const a of arcs) {
      const into = mod(start.lo - a.lo);
      if (into < a.width) {
        votes++;
        end = Math.min(end, a.width - into);
      }
    }
    if (!best || votes > best.votes || (votes === best.votes && end < best.width)) best = { lo: start.lo, width: end, votes, of: arcs.length };
  }
  return best;
}

/** The estimate when it is trusted: enough brackets, most of those kept, narrow enough; for one-second windows. */
function trusted(state: RateState | undefined): EdgeEstimate | undefined {
  if (!state || state.window !== 1) return undefined;
  const e = estimateEdge(state.edges);
  return e && e.votes >= MIN_VOTES && e.votes * 2 > e.of && e.width <= MAX_WIDTH_MS ? e : undefined;
}

/**
 * When the window after a refused request opens at the latest (ms, Redis's clock), or 0 when that is not known
 * well enough (a per-minute budget; too few, too scattered or too wide brackets; a refusal just after the
 * estimated start). The refused request was sent at `sentAt`.
 */
export function nextWindowStart(state: RateState | undefined, sentAt: number): number {
  const e = trusted(state);
  if (!e) return 0;
  const end = e.lo + e.width;
  if (mod(sentAt - end) < EARLY_GUARD_MS) return 0;
  return sentAt + mod(end - sentAt);
}

/**
 * Where to count a refused request's window from, given when the next one opens (nextWindowStart): a second
 * before the middle of the estimate, so that a request or so early or late is all the count can be off by.
 */
export function windowCountFrom(state: RateState | undefined, opensAt: number): number {
  const e = trusted(state);
  return opensAt - SECOND - (e ? e.width / 2 : 0);
}
