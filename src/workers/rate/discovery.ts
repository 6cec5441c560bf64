// The rules that learn an unpublished rate limit, as pure functions of the shared state and what was seen.
// Why these rules (and not CUBIC or AIMD): see the comment at the top of ../rateController.ts. Every time is
// in milliseconds on Redis's clock, so that processes on several machines compare the same times; every rate
// is in requests per second. Nothing here touches Redis: sharedRate.ts stores the state, rateController.ts
// feeds the events, and test/rateDiscovery.test.ts drives these functions against simulated limits.

/** `start`: climbing from a safe rate while nothing is refused. `hold`: at the learned rate, probing now and then. */
export type Phase = 'start' | 'hold';
/** The limit's window, as far as it is known: 1 (per second, the default) or 60 (a per-minute budget). */
export type WindowSeconds = 1 | 60;

/** What every worker process shares for one scope (stored in Redis by sharedRate.ts). */
export interface RateState {
  /** the learned limit (requests/s); the pacer sends at RATE_HEADROOM × min(rate, the process's cap) */
  rate: number;
  phase: Phase;
  window: WindowSeconds;
  /** highest rate held without a 429 for a confirm period since the limit last fell (0 = none yet) */
  lo: number;
  /** the rate before the probe in progress (0 = no probe) */
  probeFrom: number;
  /** when the probe in progress began */
  probeAt: number;
  /** no probe before this time */
  nextProbe: number;
  /** time between probes (ms): doubles while probes fail */
  gap: number;
  /** the next probe's size, as a share of the rate: doubles while probes succeed */
  step: number;
  /** the next cut for a 429 that measures nothing, as a share: triples while such 429s repeat (2, 6, 18, then maxCut 30%) */
  cut: number;
  /** 1 when the last decision took a count as the limit */
  measuredLast: number;
  /** 1 once a count taken as the limit proved too high: the windows are fixed ones, whose one-second counts
   *  hold the previous window's tail; counts are then only upper bounds */
  spill: number;
  /** the rate the current chain of repeated 429 episodes began at (0 = none): where the limit was before it fell */
  chainFrom: number;
  /** the rate held before the limit last fell: probed back toward until `wmaxUntil` (0 = none) */
  wmax: number;
  wmaxUntil: number;
  /** when the last 429 episode was acted on: 429s for requests sent before it belong to that episode */
  lastDecrease: number;
  /** when the last 429 (of the global limit) came back */
  last429: number;
  /** when sending resumes after the last 429's Retry-After: a rate is clean only after sending at it again */
  resumeAt: number;
  /** when `rate` last changed */
  lastChange: number;
  /** when the rate was last set from the server's evidence (a 429, an announced limit, a held probe); 0 = never */
  learnedAt: number;
  /** the per-minute limit the API last announced (RevenueCat-Rate-Limit-Current-Limit), 0 = none */
  announced: number;
  announcedAt: number;
  /** the cap applied when the state was last written (the writer's --rate and announced limit), 0 = none */
  ceiling: number;
  /** --rate of the process that last joined, 0 = none */
  configured: number;
  /** where fixed windows start: the last brackets of refusals, modulo a second (windowEdge.ts; '' = none) */
  edges: string;
}

export interface DiscoveryParams {
  /** first rate when nothing is known and no --rate is given: low enough for any API */
  startRate: number;
  floorRate: number;
  /** slow start: the rate is multiplied by `growth` after each `stepMs` without a 429 */
  growth: number;
  stepMs: number;
  /** the pace is the bottleneck (not the queue's demand or the concurrency) when at least this share of it was sent */
  bindingShare: number;
  /** share of the rate the pacer actually sends at (pacer.ts): room for a few ms of jitter */
  headroom: number;
  /** cut for a lone 429 at a rate that was fine: jitter at the edge of the window, or the first sign of a lower limit */
  nudge: number;
  /** largest cut for 429s that measure nothing (the cut triples from 1 - nudge while they repeat) */
  maxCut: number;
  /** the 1-second count at a 429 measures the limit when it is under this share of the pace */
  informativeShare: number;
  /** ...and at a lone 429 (no repeat) at a held rate, only when under this share (a busy machine sends short) */
  loneShare: number;
  /** a 429 episode this soon after sending resumed from the previous one is a repeat: the last cut was not enough */
  repeatMs: number;
  /** a Retry-After (or backoff_ms) this long comes from a long window: a per-minute budget */
  longRetryAfterMs: number;
  /** how long a probe must hold without a 429, per window; longer when the probe adds little (see probeHeld) */
  confirmMs: Record<WindowSeconds, number>;
  /** a probe holds only once it sent this many requests more than the rate it started from would have */
  confirmExtra: number;
  /** how long a rate must be held without a 429 to count as clean (the floor of later bisections), per window */
  cleanMs: Record<WindowSeconds, number>;
  probeStep: number;
  maxProbeStep: number;
  /** probe gaps per window: after a doubt, after a 429 that measured the limit, and the longest */
  gapMin: Record<WindowSeconds, number>;
  gapMeasured: Record<WindowSeconds, number>;
  gapMax: Record<WindowSeconds, number>;
  /** longest gap while a higher level is remembered (the limit fell: it may come back) */
  gapRemembering: number;
  /** how long a higher level is remembered */
  rememberMs: number;
  /** the least step of a probe toward a remembered level, as a share of the rate */
  rememberStep: number;
  /** a learned rate older than this is not trusted by a joining process */
  trustMs: number;
  /** announced limits older than this no longer cap */
  announcedTtlMs: number;
  /** usage by other clients (Current-Usage beyond our own requests) counts once above this share of the limit */
  othersShare: number;
}

export const DEFAULT_DISCOVERY: Readonly<DiscoveryParams> = Object.freeze({
  startRate: 5,
  floorRate: 0.2,
  growth: 1.5,
  stepMs: 1000,
  bindingShare: 0.8,
  headroom: 0.98,
  nudge: 0.98,
  maxCut: 0.3,
  informativeShare: 0.97,
  loneShare: 0.85,
  repeatMs: 3000,
  longRetryAfterMs: 2000,
  confirmMs: { 1: 1500, 60: 65_000 },
  confirmExtra: 3,
  cleanMs: { 1: 5000, 60: 65_000 },
  probeStep: 0.04,
  maxProbeStep: 0.64,
  gapMin: { 1: 5000, 60: 120_000 },
  gapMeasured: { 1: 30_000, 60: 300_000 },
  gapMax: { 1: 300_000, 60: 600_000 },
  gapRemembering: 8000,
  rememberMs: 10 * 60_000,
  rememberStep: 0.25,
  trustMs: 7 * 24 * 3600_000,
  announcedTtlMs: 10 * 60_000,
  othersShare: 0.05,
});

/**
 * Requests per second the pacer plans for a pace (rate × headroom): a whole number of requests each second once
 * rounding down costs no more than the headroom itself (always from 50/s up), so that each second's requests are
 * the same count, evenly spaced (49, 49, 49 rather than 49, 50, 49, 50 for 49.5/s). Against a limit counted in
 * fixed one-second windows, a pace that puts the limit's own count into every other window is refused whenever
 * one request of the window before arrives a few ms late; one whole request under it is not.
 */
export function paceAim(pace: number, headroom: number = DEFAULT_DISCOVERY.headroom): number {
  const whole = Math.floor(pace);
  return whole >= pace * headroom ? whole : pace;
}

/** What one process knows that is not shared: its --rate and the last announced usage it saw. */
export interface LocalLimits {
  /** --rate, undefined = discover without ceiling */
  configured: number | undefined;
  /** the last Current-Limit/-Current-Usage pair this process saw, with our own requests over the same minute */
  usage?: { perMinute: number; usage: number; oursLastMinute: number } | undefined;
}

/** Counts from the pacer's log, around the moment that matters. */
export interface Counts {
  /** requests sent in the last second, up to now */
  sent1: number;
  /** requests sent (and not refused) since the probe in progress began, when one is */
  sinceProbe?: number | undefined;
}

export interface RateLimitedEvent {
  now: number;
  /** when the refused request was sent */
  sentAt: number;
  /** what the server asked to wait (backoff_ms or Retry-After), undefined when it said nothing */
  retryAfterMs: number | undefined;
  /**
   * Requests admitted (sent, not refused) in the window that refused this one, counted by send time: the
   * second before `sentAt`, or, when the wait asked is exact (backoff_ms), from `sentAt + wait - 1 s` (the
   * moment the window's oldest admitted request was sent, for a sliding window; the window's start, for a
   * fixed one). Undefined when no longer known.
   */
  admitted1: number | undefined;
  /** the same over a minute */
  admitted60: number | undefined;
  /** the counts start where the server's own window does (an exact wait was given): they are the limit */
  exact?: boolean;
  /**
   * When the refused request's window is known to open again (windowEdge.ts), the schedule is held until then
   * and no longer: sending resumes there, not after the whole wait asked. Requests sent after it are a new episode.
   */
  opensAt?: number | undefined;
}

/** A wait given in whole seconds (Retry-After) is rounded; one that is not came from an exact backoff_ms. */
export function isExactWait(retryAfterMs: number | undefined): boolean {
  return retryAfterMs !== undefined && retryAfterMs > 0 && retryAfterMs % 1000 !== 0;
}

/**
 * How long a 429 holds every process's schedule when its wait is a rounded whole second (Retry-After: 1, not an
 * exact backoff_ms) in a one-second window: a hold of two slots for the second's first refusal, doubling with each
 * more refusal in that second, up to the wait (pace-1.lua). 0: hold for the whole wait, as for an exact wait or a
 * per-minute budget.
 * Why: such a wait says "within a second", not "a second". In a fixed window the refused request was most often the
 * window's last, one that left a few ms late (or a probe's extra one), and the next window opens a slot or two later.
 * Pausing every process for the whole second left that next window all but empty: 47 of 49 requests lost for one
 * refused, most of what kept steady-state use at 0.93-0.95 of the limit. When the window really is full for longer
 * (the limit fell, others' traffic took it), the refusals go on and the hold doubles to the whole wait within a few
 * requests. The refused row itself waits the whole Retry-After, as RevenueCat's SDK waits with a refused request.
 */
export function edgeHoldMs(state: RateState | undefined, retryAfterMs: number | undefined, rate: number): number {
  if (retryAfterMs === undefined || retryAfterMs > 1000 || isExactWait(retryAfterMs)) return 0;
  if (state && state.window !== 1) return 0;
  return Math.min(retryAfterMs, Math.max(20, 2000 / Math.max(rate, 1)));
}

/** Where the count of admitted requests starts for a refused request (see RateLimitedEvent.admitted1). */
export function windowStart(sentAt: number, retryAfterMs: number | undefined, windowMs: number): number {
  return isExactWait(retryAfterMs) ? sentAt + (retryAfterMs as number) - windowMs : sentAt - windowMs;
}

/** A new state and why, or undefined when nothing changes. */
export interface Decision {
  next: RateState;
  /** what happened, for the log (undefined: bookkeeping only) */
  reason?: string;
}

/** The announced limit as a rate (less what other clients use of it), Infinity when none is known. */
export function announcedCap(state: RateState | undefined, local: LocalLimits, now: number, p: DiscoveryParams = DEFAULT_DISCOVERY): number {
  if (!state || !(state.announced > 0) || now - state.announcedAt > p.announcedTtlMs) return Infinity;
  let perMinute = state.announced;
  const u = local.usage;
  if (u && u.perMinute === state.announced) {
    // Current-Usage counts every client of the limit; what is not ours is the live app's (or another tool's) share.
    const others = u.usage - u.oursLastMinute;
    if (others > p.othersShare * u.perMinute) perMinute -= others;
  }
  return Math.max(p.floorRate, perMinute / 60);
}

/** The rate cap of one process: its --rate and the announced limit. */
export function capOf(state: RateState | undefined, local: LocalLimits, now: number, p: DiscoveryParams = DEFAULT_DISCOVERY): number {
  return Math.min(local.configured ?? Infinity, announcedCap(state, local, now, p));
}

function fresh(now: number, configured: number | undefined, p: DiscoveryParams): RateState {
  return {
    rate: configured ?? p.startRate,
    phase: configured === undefined ? 'start' : 'hold',
    window: 1,
    lo: 0,
    probeFrom: 0,
    probeAt: 0,
    nextProbe: now + p.gapMin[1],
    gap: p.gapMin[1],
    step: p.probeStep,
    cut: 1 - p.nudge,
    measuredLast: 0,
    spill: 0,
    chainFrom: 0,
    wmax: 0,
    wmaxUntil: 0,
    lastDecrease: 0,
    last429: 0,
    resumeAt: 0,
    lastChange: now,
    learnedAt: 0,
    announced: 0,
    announcedAt: 0,
    ceiling: configured ?? 0,
    configured: configured ?? 0,
    edges: '',
  };
}

/**
 * A process joins. A rate learned within `trustMs` stands (restarted workers start from it); otherwise a
 * process with --rate starts at it (as before discovery existed: the user said what the limit is) and one
 * without starts low and climbs.
 */
export function onJoin(state: RateState | undefined, now: number, local: LocalLimits, p: DiscoveryParams = DEFAULT_DISCOVERY): Decision {
  const configured = local.configured;
  if (!state || (state.learnedAt > 0 && now - state.learnedAt > p.trustMs)) {
    return { next: fresh(now, configured, p), reason: configured === undefined ? 'discovering the limit' : 'starting at --rate' };
  }
  const next: RateState = { ...state, configured: configured ?? 0 };
  if (state.learnedAt === 0 && state.phase === 'hold' && state.announced === 0) {
    // Nothing learned yet, only a --rate applied: a process with its own --rate starts there, one without
    // discovers from where the queue has been going without a 429.
    if (configured !== undefined) Object.assign(next, { rate: configured, lastChange: now });
    else Object.assign(next, { phase: 'start', lastChange: now });
  }
  return { next, reason: 'joined the shared rate' };
}

const binding = (rate: number, counts: Counts, p: DiscoveryParams): boolean => counts.sent1 >= p.bindingShare * p.headroom * rate;

/**
 * Every process ticks a few times a second; whichever ticks first after a step is due makes it (the shared
 * timestamps make the others see it done). Slow start climbs; hold confirms clean rates and probes.
 */
export function onTick(state: RateState, now: number, counts: Counts, local: LocalLimits, p: DiscoveryParams = DEFAULT_DISCOVERY): Decision | undefined {
  // The shared rate follows the announced limit (every process's knowledge); a --rate caps only its own process.
  const shared = announcedCap(state, local, now, p);
  const cap = Math.min(shared, local.configured ?? Infinity);
  const next: RateState = { ...state, ceiling: Number.isFinite(cap) ? cap : 0 };
  const changed = (reason: string | undefined): Decision => ({ next, ...(reason ? { reason } : {}) });
  const setRate = (rate: number): void => {
    next.rate = rate;
    next.lastChange = now;
  };

  if (state.rate > shared) {
    setRate(shared);
    next.probeFrom = 0;
    if (state.phase === 'start') next.phase = 'hold';
    return changed('capped by the announced limit');
  }
  const rate = Math.min(state.rate, cap);
  const clean = state.last429 <= state.lastChange && now >= state.resumeAt;
  const busy = binding(rate, counts, p);

  if (state.phase === 'start') {
    if (rate >= cap) {
      next.phase = 'hold';
      return changed('reached the cap');
    }
    if (now - state.lastChange < p.stepMs || !clean || !busy) return undefined;
    const up = Math.min(cap, rate * p.growth);
    // A step held clean proves the step before it: every window that fitted in those two steps (a sliding one,
    // or a fixed one of unknown phase) saw at least the earlier rate and admitted it all.
    next.lo = Math.max(state.lo, rate / p.growth);
    next.learnedAt = now;
    setRate(up);
    if (up >= cap) next.phase = 'hold';
    return changed(up >= cap ? 'climbed to the cap' : 'no 429 yet: climbing');
  }

  if (state.probeFrom > 0) {
    // A probe a little above the limit overflows a window only now and then (at +2% of 10/s, once every 5 s):
    // it holds once it has sent a few requests more than its start would have, and for the window's length.
    const extraMs = (p.confirmExtra * 1000) / Math.max(rate - state.probeFrom, 0.01);
    if (now - state.probeAt < Math.max(p.confirmMs[state.window], Math.min(extraMs, 30_000))) return undefined;
    // The probe must have sent more than its start would have: a client that cannot keep up with its own pace (the
    // queue runs dry, the concurrency or the CPU is short) proves nothing about the limit by not being refused.
    const needed = ((now - state.probeAt) / 1000) * paceAim(p.headroom * (state.probeFrom + (rate - state.probeFrom) / 2), p.headroom);
    if (!busy || (counts.sinceProbe !== undefined && counts.sinceProbe < needed)) {
      // The queue (or the concurrency) set the pace during the probe: it proved nothing. Back to where it was.
      setRate(state.probeFrom);
      Object.assign(next, { probeFrom: 0, nextProbe: now + state.gap });
      return changed('probe inconclusive: too little to send');
    }
    // What the probe proved is what it sent (its pace), not the rate it was labelled with: the limit admits at
    // least that. Held at the rate whose pace is one request a second under what it sent, the pacer keeps a
    // request of headroom under a proven level (the probe itself may have sent the limit's very count each second,
    // which a few ms of jitter would overflow), not the probe's rounding and the headroom again (at a limit of 100:
    // a probe sending 98 held 96, where 97 is as safe).
    // (With --rate the pacer sends the pace as it is, not in whole requests: the probe's rate stands, as it did.)
    const sent = paceAim(p.headroom * rate, p.headroom);
    const proven = local.configured !== undefined ? rate : Math.max(state.probeFrom, Math.min(rate, (sent - 0.5) / p.headroom));
    const gained =
      proven > state.probeFrom * 1.001 && (local.configured !== undefined || paceAim(p.headroom * proven, p.headroom) > paceAim(p.headroom * state.probeFrom, p.headroom));
    setRate(gained ? proven : state.probeFrom);
    if (!gained) {
      // It sent no more than the rate already held (its pace rounded down to the same whole requests): it proved
      // nothing. The next probe goes further, and later, as after a refused one, without a 429 to pay for it.
      Object.assign(next, {
        probeFrom: 0,
        step: Math.min(p.maxProbeStep, state.step * 2),
        gap: Math.min(p.gapMax[state.window], Math.max(p.gapMin[state.window], state.gap * 2)),
      });
      next.nextProbe = now + next.gap;
      return changed('probe held, but sent no more than the rate held');
    }
    Object.assign(next, {
      lo: proven,
      probeFrom: 0,
      learnedAt: now,
      step: Math.min(p.maxProbeStep, state.step * 2),
      gap: p.gapMin[state.window],
      nextProbe: now,
    });
    if (state.wmax > 0 && rate >= state.wmax * 0.99) Object.assign(next, { wmax: 0, wmaxUntil: 0 });
    return changed('probe held: the limit is higher');
  }

  // A rate held without a 429 for a whole window is a known-good rate: the floor of later bisections.
  if (busy && rate > state.lo && now - Math.max(state.lastChange, state.last429, state.resumeAt) >= p.cleanMs[state.window]) {
    next.lo = rate;
    next.cut = 1 - p.nudge;
    return changed(undefined);
  }

  if (now >= state.nextProbe && busy && rate < cap * 0.995) {
    const remembering = state.wmax > rate * 1.05 && now < state.wmaxUntil;
    // Toward a remembered level, no further than it: it is where the limit most likely came back to. In steps of a
    // quarter at least (a held probe calls the next at once): a refused jump to twice the
    // rate fills a fixed window by its middle, and every request of the rest of it is refused (ten 429s and a
    // paused second, each time it is tried), where a quarter more overflows only its last few slots. Otherwise a
    // step up; where the pacer sends whole requests a second (paceAim), at least one more a second than the rate
    // held: a probe that rounds down to the same count tests nothing.
    let target = remembering ? Math.min(state.wmax, rate * (1 + Math.max(state.step, p.rememberStep))) : rate * (1 + state.step);
    if (local.configured === undefined && paceAim(p.headroom * target, p.headroom) <= rate) target = (Math.floor(rate) + 1) / p.headroom + 0.01;
    target = Math.min(cap, target);
    if (target <= rate * 1.005) return undefined;
    Object.assign(next, { probeFrom: rate, probeAt: now });
    setRate(target);
    return changed(remembering ? 'probing toward the level held before the limit fell' : 'probing for a higher limit');
  }
  return undefined;
}

/**
 * A 429 of the global limit (never a busy user's 7638, never a 529). Requests sent before the last decision, or
 * during the wait it asked for, belong to the episode already acted on. Otherwise: measure, else bisect, else cut.
 * - A long wait asked (≥ 2 s) means a long window: the budget is what was admitted over the last minute.
 * - In a one-second window, what was admitted in the second before the refused request is the limit when it is
 *   clearly under what the pacer sent (a sliding window filled by requests we counted): take it as the rate.
 * - Otherwise (a fixed window, or a rate barely above the limit) bisect between the last clean rate and this
 *   one. With no clean rate below, cut: a lone 429 by 2% (jitter does that; if the limit really fell, the next
 *   episode, within `repeatMs`, measures it), and by three times as much each time the episodes repeat (6, 18,
 *   then `maxCut`, 30%).
 */
export function onRateLimited(state: RateState, ev: RateLimitedEvent, local: LocalLimits, p: DiscoveryParams = DEFAULT_DISCOVERY): Decision | undefined {
  const { now } = ev;
  // Sent before the last decision, or during the wait it asked for (a request that had its slot already):
  // the same episode.
  const knownStart = ev.opensAt !== undefined && ev.opensAt > 0;
  const resumeAt = knownStart ? (ev.opensAt as number) : now + (ev.retryAfterMs ?? 0);
  if (ev.sentAt < Math.max(state.lastDecrease, state.resumeAt)) {
    return state.last429 >= now ? undefined : { next: { ...state, last429: now, resumeAt: Math.max(state.resumeAt, resumeAt) } };
  }
  const cap = capOf(state, local, now, p);
  const long = ev.retryAfterMs !== undefined && ev.retryAfterMs >= p.longRetryAfterMs;
  const window: WindowSeconds = long ? 60 : state.window;
  // The rate this process was sending under (its --rate may hold it below the shared rate).
  const x = Math.min(state.rate, cap);
  const next: RateState = { ...state, window, phase: 'hold', probeFrom: 0, last429: now, lastDecrease: now, learnedAt: now, resumeAt };
  const probing = state.probeFrom > 0;
  const remembered = (): boolean => next.wmax > 0 && now < next.wmaxUntil;
  let rate: number;
  let reason: string;
  let gap: number;
  let step = p.probeStep;

  if (window === 60) {
    // A per-minute budget: spread what the server admitted over the last minute evenly across the next.
    const budget = ev.admitted60 !== undefined && ev.admitted60 > 0 ? ev.admitted60 / 60 : x * p.nudge;
    rate = Math.min(x, budget);
    reason = long && state.window !== 60 ? 'a long Retry-After: the limit is a per-minute budget' : 'per-minute budget reached';
    gap = probing ? Math.min(p.gapMax[60], Math.max(p.gapMin[60], state.gap * 2)) : p.gapMeasured[60];
  } else {
    const pace = x * p.headroom;
    // The count of the second before is the limit (a sliding window) when clearly under what the pacer sent;
    // once holding, by a request more (a request leaving a few ms late moves one across the second's edge).
    // With an exact wait it is the limit whatever the window.
    const a1 = ev.admitted1;
    const margin = state.phase === 'start' ? 0 : 1;
    const measured = a1 !== undefined && a1 > 0 && (ev.exact === true || a1 + margin < p.informativeShare * pace) ? a1 : undefined;
    // Within `repeatMs` of sending again after the last episode's wait: the last decision was not enough.
    const repeat = state.lastDecrease > 0 && now - Math.max(state.lastDecrease, state.resumeAt) <= p.repeatMs;
    // Refused again right after trusting a count: the count was too high, as a fixed window's is.
    const spill = state.spill === 1 || (repeat && state.measuredLast === 1 && ev.exact !== true);
    const bound = spill && ev.exact !== true;
    next.spill = spill ? 1 : 0;
    // A 429 at a rate once held clean: that rate is clean no longer.
    const lo = state.lo > 0 && state.lo < x ? state.lo : 0;
    next.lo = lo;
    if (!probing && state.lo >= x * 0.95) {
      // Refused at a rate that was clean: the limit may have fallen. Remember the level, to probe back to it
      // if the episodes that follow end far below it.
      next.wmax = Math.max(state.lo, remembered() ? state.wmax : 0);
      next.wmaxUntil = now + p.rememberMs;
    }
    if (probing && measured !== undefined && measured > state.probeFrom * 1.01) {
      // Refused, but more was admitted than the probe started from: the limit rose. Go most of the way and probe
      // to the measure soon (a sliding window's measure is exact and that probe holds); where counts are only
      // upper bounds, stay and probe half way.
      rate = bound ? state.probeFrom : Math.max(state.probeFrom, measured * 0.9);
      next.lo = state.probeFrom;
      step = Math.min(p.maxProbeStep, (measured / rate - 1) / (bound ? 2 : 1));
      reason = 'probe refused above a higher limit';
      gap = p.gapMin[1];
      next.cut = 1 - p.nudge;
    } else if (probing) {
      // Refused with a measure well below the start: the limit fell meanwhile (a remembered higher level is
      // probed for as boldly later, below). Near the start, or without a measure: the limit is just above the
      // start, which was clean (a count one request short is within a few ms of jitter); probe by less.
      rate = measured !== undefined && measured + 1 < state.probeFrom * 0.95 ? measured : state.probeFrom;
      next.cut = 1 - p.nudge;
      step = measured !== undefined ? p.probeStep : Math.max(p.probeStep, state.step / 2);
      reason = measured !== undefined ? 'probe refused: limit measured' : 'probe refused';
      // (A measure from a learned window start is exact for this window only: a limit shared with the live app
      // moves, and the next probe comes as soon as after an unmeasured refusal.)
      gap = Math.max(measured !== undefined && !knownStart ? p.gapMeasured[1] : p.gapMin[1], state.gap * 2);
    } else {
      // This episode's cut when nothing better is known: 2% for a lone 429, three times the last for a repeat.
      const cut = repeat ? state.cut : 1 - p.nudge;
      next.cut = Math.min(p.maxCut, cut * 3);
      if (!repeat && state.phase === 'hold' && (measured === undefined || measured >= p.loneShare * pace)) {
        // A lone 429 at a held rate: a request that left a few ms late and crossed into the next window (the pacer
        // plans whole requests a second, one under the limit), or a machine too busy to keep the slots even. Its
        // count of the second before proves little when near the pace: a busy machine sends short of it (10% and
        // more at a load of 3 per core), and a fixed window's count holds the previous window's tail. It costs one refused request and a hold of two slots
        // (edgeHoldMs); cutting would give up a request every second until the next probe. If the limit did fall,
        // the next episode comes within `repeatMs` and measures or cuts.
        rate = x;
        next.cut = Math.min(p.maxCut, (1 - p.nudge) * 3);
        reason = 'a lone 429: holding';
        gap = Math.max(state.gap, p.gapMeasured[1]);
      } else if (measured !== undefined) {
        // In a fixed window the count also holds the previous window's tail, so a measure is only an upper bound:
        // a repeat says it was too high, and the cut bounds how long a chain of such episodes lasts.
        rate = (repeat || bound) && ev.exact !== true ? Math.min(measured, x * (1 - cut)) : measured;
        reason = state.phase === 'start' ? 'limit found' : 'limit measured';
        gap = repeat ? p.gapMin[1] : p.gapMeasured[1];
      } else if (lo > 0 && (repeat || state.phase === 'start') && state.measuredLast !== 1) {
        // (Right after a count was taken as the limit, a repeat says it was a little high: cut, do not fall back
        // to a clean rate that may be far below.)
        rate = x / lo <= 1.05 ? lo : (lo + x) / 2;
        reason = state.phase === 'start' ? 'limit found (bisecting)' : 'still refused: bisecting';
        gap = p.gapMin[1];
      } else {
        // Never below what the API admitted in the second before (less a request): refused again at a rate just
        // over a fixed window's limit, that count is the limit (each window admits it, then refuses its last slot),
        // where a cut tripled by the chain would go far under it (53/s refused at a limit of 50: 43.5 after an 18% cut).
        const admitted = ev.admitted1 !== undefined && ev.admitted1 > 1 && ev.exact !== true ? Math.min(ev.admitted1 - 1, x * p.nudge) : 0;
        rate = Math.max(x * (1 - cut), admitted);
        reason = repeat ? 'still refused: cutting' : 'a 429 at a rate that was fine';
        gap = repeat ? p.gapMin[1] : p.gapMeasured[1];
      }
    }
    // A chain of episodes that ends far below where it began is the limit falling: remember where it was (the
    // probe's start when it began with a refused probe), to probe back to it.
    next.chainFrom = repeat ? state.chainFrom : state.phase === 'hold' ? (probing ? state.probeFrom : x) : 0;
    if (next.chainFrom > 0 && rate < next.chainFrom * 0.8) {
      next.wmax = Math.max(next.chainFrom, remembered() ? next.wmax : 0);
      next.wmaxUntil = now + p.rememberMs;
    }
    next.measuredLast = measured !== undefined && rate === measured ? 1 : 0;
    if (remembered() && next.wmax > rate * 1.05) {
      // The limit fell: probe back toward where it was, sooner than usual and in big steps (onTick).
      gap = Math.min(gap, p.gapRemembering);
      if (!probing || (measured !== undefined && measured <= state.probeFrom * 1.01)) step = Math.min(p.rememberStep, next.wmax / rate - 1);
    } else {
      gap = Math.min(gap, p.gapMax[1]);
    }
  }
  rate = Math.max(p.floorRate, Math.min(rate, cap));
  next.rate = rate;
  if (rate !== x) next.lastChange = now;
  next.gap = gap;
  next.step = step;
  next.nextProbe = now + gap;
  next.ceiling = Number.isFinite(cap) ? cap : 0;
  return { next, reason };
}

/**
 * The API announced its limit (per minute): the server's word beats any estimate, so the rate goes straight to
 * it when it is new or changed (up or down). Later 429s below it are handled as any others, and probes never
 * go above it.
 */
export function onAnnounced(state: RateState, now: number, perMinute: number, p: DiscoveryParams = DEFAULT_DISCOVERY): Decision | undefined {
  if (!(perMinute > 0)) return undefined;
  const stale = now - state.announcedAt > p.announcedTtlMs / 4;
  if (state.announced === perMinute && !stale) return undefined;
  const next: RateState = { ...state, announced: perMinute, announcedAt: now };
  if (state.announced === perMinute) return { next };
  const rate = Math.max(p.floorRate, perMinute / 60);
  Object.assign(next, { rate, lastChange: now, learnedAt: now, phase: 'hold', probeFrom: 0 });
  return { next, reason: 'the API announced its limit' };
}

/** The rate one process paces for: the shared learned rate under its own cap. */
export function effectiveRate(state: RateState, local: LocalLimits, now: number, p: DiscoveryParams = DEFAULT_DISCOVERY): number {
  return Math.max(p.floorRate, Math.min(state.rate, capOf(state, local, now, p)));
}
