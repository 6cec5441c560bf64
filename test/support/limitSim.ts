// A virtual-time model of the pipeline against a rate limit, for the discovery rules (src/workers/rate/
// discovery.ts): an API that counts requests over sliding or fixed windows with a limit that may change, a
// pacer that sends evenly at the headroom share of the learned rate, a schedule held for each 429's Retry-After
// (or, for a wait of "within a second", for two slots doubling with each refusal of the same second, as
// pace-1.lua holds it), and controller ticks. No Redis, no timers: minutes of traffic run in milliseconds, the same
// every time, so tests can assert convergence without timing anything.
import {
  DEFAULT_DISCOVERY,
  edgeHoldMs,
  effectiveRate,
  onJoin,
  onRateLimited,
  onTick,
  isExactWait,
  paceAim,
  windowStart,
  type DiscoveryParams,
  type RateState,
} from '../../src/workers/rate/discovery.js';
import { learnEdge, nextWindowStart, windowCountFrom } from '../../src/workers/rate/windowEdge.js';

export interface SimLimit {
  /** requests admitted per window */
  limit: number | ((tMs: number) => number);
  windowMs: number;
  kind: 'sliding' | 'fixed';
  /** Retry-After precision: whole seconds (at least 1, as RevenueCat's header) or exact milliseconds (backoff_ms) */
  retryAfter?: 'seconds' | 'ms';
  /** where fixed windows start (ms): the API's windows need not line up with the client's start */
  originMs?: number;
}

export interface SimOptions {
  server: SimLimit;
  durationMs: number;
  /** --rate */
  configured?: number;
  latencyMs?: number;
  /** ± uniform jitter on each request's latency */
  jitterMs?: number;
  /** each request leaves up to this long after its slot (a busy event loop, a busy machine) */
  sendJitterMs?: number;
  tickMs?: number;
  params?: DiscoveryParams;
  /** never hold a refusal until a learned window start (windowEdge.ts): the doubling holds alone */
  edgeUnknown?: boolean;
  /** a state to join (as a restarted worker) */
  initial?: RateState;
  seed?: number;
}

export interface SimResult {
  /** successful requests per whole second of simulated time */
  okPerSecond: number[];
  sent: number;
  ok: number;
  limited: number;
  /** the learned rate sampled every second */
  ratePerSecond: number[];
  /** refusals held until a learned window start, not by doubling holds */
  edgeHolds: number;
  final: RateState;
  decisions: { t: number; reason: string; rate: number }[];
}

/** Mulberry32: a small seeded generator, so a jittered run is the same every time. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function simulate(opts: SimOptions): SimResult {
  const p = opts.params ?? DEFAULT_DISCOVERY;
  const latency = opts.latencyMs ?? 50;
  const jitter = opts.jitterMs ?? 0;
  const tickMs = opts.tickMs ?? 250;
  const rnd = random(opts.seed ?? 1);
  const local = { configured: opts.configured };
  const limitAt = (t: number): number => (typeof opts.server.limit === 'function' ? opts.server.limit(t) : opts.server.limit);
  const decisions: SimResult['decisions'] = [];

  let state = onJoin(opts.initial, 0, local, p).next;
  // Server: admitted request arrival times (ascending).
  const admitted: number[] = [];
  let head = 0;
  // Client log: send times and which were refused (known once answered).
  const sends: number[] = [];
  const refusedAt: number[] = [];
  const refusedSet = new Set<number>();
  let lastRefused = 0;
  let bracketOpen = false;
  let settle = 0;
  let edgeHolds = 0;
  // pace-1.lua's resolveBracket: once the answers are in (settle), the first request sent after the last refused
  // one, within a second, that was not refused brackets a window's start; learned into the state at once.
  const resolveBracket = (now: number): void => {
    if (!bracketOpen) return;
    const horizon = Math.min(lastRefused + 1000, now - settle);
    for (let i = countIn(sends, -Infinity, lastRefused); i < sends.length && (sends[i] as number) <= horizon; i++) {
      const sent = sends[i] as number;
      if (!refusedSet.has(sent)) {
        bracketOpen = false;
        const edges = learnEdge(state.edges, { from: lastRefused, to: sent });
        if (edges !== undefined) state = { ...state, edges };
        return;
      }
    }
    if (horizon >= lastRefused + 1000) bracketOpen = false;
  };
  const answers: { at: number; sentAt: number; ok: boolean; retryAfterMs: number }[] = [];
  const okPerSecond: number[] = [];
  const ratePerSecond: number[] = [];
  let ok = 0;
  let limited = 0;
  let nextSlot = 0;
  let hold = 0;
  let nextTick = 0;

  const countIn = (list: number[], from: number, to: number): number => {
    // list ascending: count of from < x <= to
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((list[mid] as number) <= from) lo = mid + 1;
      else hi = mid;
    }
    let lo2 = lo;
    hi = list.length;
    while (lo2 < hi) {
      const mid = (lo2 + hi) >>> 1;
      if ((list[mid] as number) <= to) lo2 = mid + 1;
      else hi = mid;
    }
    return lo2 - lo;
  };

  const serve = (arrival: number): { ok: boolean; retryAfterMs: number } => {
    const { windowMs, kind } = opts.server;
    const limit = limitAt(arrival);
    while (head < admitted.length && (admitted[head] as number) <= arrival - Math.max(windowMs, 60_000)) head++;
    let inWindow: number;
    let freeAt: number;
    if (kind === 'sliding') {
      inWindow = countIn(admitted, arrival - windowMs, arrival);
      freeAt = inWindow >= limit ? (admitted[admitted.length - limit] ?? arrival) + windowMs : arrival;
    } else {
      const origin = opts.server.originMs ?? 0;
      const start = origin + Math.floor((arrival - origin) / windowMs) * windowMs;
      inWindow = countIn(admitted, start - 1e-9, arrival);
      freeAt = start + windowMs;
    }
    if (inWindow < limit) {
      // (Requests that left late may arrive after later ones: keep the list in arrival order.)
      let k = admitted.length;
      while (k > head && (admitted[k - 1] as number) > arrival) k--;
      admitted.splice(k, 0, arrival);
      return { ok: true, retryAfterMs: 0 };
    }
    const waitMs = Math.max(1, freeAt - arrival);
    return { ok: false, retryAfterMs: opts.server.retryAfter === 'ms' ? waitMs : Math.max(1, Math.ceil(waitMs / 1000)) * 1000 };
  };

  const apply = (d: ReturnType<typeof onTick>, t: number): void => {
    if (!d) return;
    state = d.next;
    if (d.reason) decisions.push({ t, reason: d.reason, rate: state.rate });
  };

  for (;;) {
    // As the pacer plans it: whole requests per second once that costs no more than the headroom, unless --rate
    // gave the rate (pacer.ts).
    const paced = effectiveRate(state, local, 0, p) * p.headroom;
    const pace = opts.configured === undefined ? paceAim(paced) : paced;
    const sendAt = Math.max(nextSlot, hold);
    const answerAt = answers.length > 0 ? (answers[0] as { at: number }).at : Infinity;
    const t = Math.min(sendAt, answerAt, nextTick);
    if (t > opts.durationMs) break;
    if (t === answerAt) {
      const a = answers.shift() as (typeof answers)[number];
      if (a.ok) {
        ok++;
        const s = Math.floor(a.at / 1000);
        okPerSecond[s] = (okPerSecond[s] ?? 0) + 1;
        continue;
      }
      limited++;
      refusedAt.push(a.sentAt);
      refusedAt.sort((x, y) => x - y);
      refusedSet.add(a.sentAt);
      const edge = edgeHoldMs(state, a.retryAfterMs, effectiveRate(state, local, 0, p));
      const refusedInSecond = countIn(refusedAt, a.sentAt - 999 - 1e-6, a.at);
      // As pace-1.lua holds it: until the window opens when that is known (windowEdge.ts), else doubling holds.
      const opensAt = edge > 0 && !opts.edgeUnknown ? nextWindowStart(state, a.sentAt) : 0;
      if (opensAt > 0) edgeHolds++;
      const heldMs =
        opensAt > 0 ? Math.min(a.retryAfterMs, Math.max(0, opensAt - a.at)) : edge > 0 ? Math.min(a.retryAfterMs, edge * 2 ** (Math.max(1, refusedInSecond) - 1)) : a.retryAfterMs;
      hold = Math.max(hold, a.at + heldMs);
      // As pace-1.lua: the refusal first resolves the bracket the last one opened, then opens its own.
      resolveBracket(a.at);
      if (edge > 0 && a.sentAt >= lastRefused) {
        lastRefused = a.sentAt;
        bracketOpen = true;
        settle = Math.min(3000, Math.max(100, 3 * (a.at - a.sentAt)));
      }
      // Counted as the pipeline counts (pacer's log, by send time), from where the server's window starts.
      const admittedFrom = (from: number): number => countIn(sends, from - 1e-6, a.sentAt) - countIn(refusedAt, from - 1e-6, a.sentAt);
      // (With the window's start known, from there: rateController.ts.)
      const admitted1 = admittedFrom(opensAt > 0 ? windowCountFrom(state, opensAt) : windowStart(a.sentAt, a.retryAfterMs, 1000));
      const admitted60 = admittedFrom(windowStart(a.sentAt, a.retryAfterMs, 60_000));
      const exact = isExactWait(a.retryAfterMs) || opensAt > 0;
      apply(onRateLimited(state, { now: a.at, sentAt: a.sentAt, retryAfterMs: a.retryAfterMs, admitted1, admitted60, exact, opensAt }, local, p), a.at);
      continue;
    }
    if (t === nextTick) {
      nextTick += tickMs;
      resolveBracket(t);
      if (t % 1000 === 0) ratePerSecond.push(state.rate);
      apply(onTick(state, t, { sent1: countIn(sends, t - 1000, t) }, local, p), t);
      continue;
    }
    // A send at its slot (leaving a little after it when the machine is busy).
    nextSlot = t + 1000 / pace;
    const sent = t + (opts.sendJitterMs ? rnd() * opts.sendJitterMs : 0);
    let j = sends.length;
    while (j > 0 && (sends[j - 1] as number) > sent) j--;
    sends.splice(j, 0, sent);
    const lat = latency + (jitter > 0 ? (rnd() * 2 - 1) * jitter : 0);
    const verdict = serve(sent + lat / 2);
    const at = sent + lat;
    let i = answers.length;
    while (i > 0 && (answers[i - 1] as { at: number }).at > at) i--;
    answers.splice(i, 0, { at, sentAt: sent, ok: verdict.ok, retryAfterMs: verdict.retryAfterMs });
  }
  const seconds = Math.ceil(opts.durationMs / 1000);
  for (let s = 0; s < seconds; s++) okPerSecond[s] ??= 0;
  return { okPerSecond: okPerSecond.slice(0, seconds), sent: sends.length, ok, limited, ratePerSecond, edgeHolds, final: state, decisions };
}

/** First second from which the `windowS`-second average of successes reaches `share` × the limit. */
export function secondsTo(okPerSecond: number[], limitPerSecond: (s: number) => number, share = 0.9, windowS = 5, from = 0): number | undefined {
  for (let s = Math.max(from, windowS - 1); s < okPerSecond.length; s++) {
    let sum = 0;
    let lim = 0;
    for (let k = s - windowS + 1; k <= s; k++) {
      sum += okPerSecond[k] ?? 0;
      lim += limitPerSecond(k);
    }
    if (sum >= share * lim) return s + 1 - from;
  }
  return undefined;
}

/** Successes over [fromS, toS) against the limit over the same seconds. */
export function use(okPerSecond: number[], limitPerSecond: (s: number) => number, fromS: number, toS: number): number {
  let sum = 0;
  let lim = 0;
  for (let s = fromS; s < toS; s++) {
    sum += okPerSecond[s] ?? 0;
    lim += limitPerSecond(s);
  }
  return sum / lim;
}
