// One request rate per limit scope (default: the whole queue), learned from the API's answers and shared by
// every worker process on every machine through Redis, with the time it was learned, so that restarted workers
// start from it.
//
// Why this design. RevenueCat publishes no limit for POST /v1/receipts. A counting limit (N per window) gives
// no warning before its 429 (latency does not rise), and a 429 paused for its whole Retry-After (a second at
// least, every process) costs a window's worth of requests. The options:
// - AWS SDKs' adaptive retry: a token bucket whose rate drops to 0.7 x the measured rate on a throttle and
//   climbs back on a cubic curve that flattens near the old maximum, then probes past it. Against a fixed quota
//   that is a sawtooth with a throttle every few seconds: between 0.7 and 1.0 of the limit, about 0.85 on
//   average, plus a paused second per cycle. It is made to back off from a moving capacity, not to hold a quota.
// - TCP slow start + AIMD (what this tool had): the additive climb finds a raised limit slowly and the
//   multiplicative cuts again average about 0.9 of the limit.
// - BBR: measure the bottleneck rather than react to loss, hold at the measure, probe it now and then. That fits
//   a counting limit, because a 429 is itself a measurement.
// Chosen: slow start to find the order of magnitude, then BBR-style measure and hold (rate/discovery.ts):
// - Start at 5/s (or at --rate, or at the rate learned before, trusted for 7 days) and multiply by 1.5 every
//   second while nothing is refused and the pace, not the queue or the concurrency, is what limits sending.
// - Measure at the 429: every slot the pacer hands out is logged in Redis by send time (pace-1.lua), so the
//   controller counts what the API admitted in the second before the refused request; for a sliding window
//   that count is the limit. With an exact wait (backoff_ms) the count starts where the server's window
//   starts, exact for a fixed window too. When the count says nothing (a fixed window's count also holds the
//   previous window's tail; a rate barely over the limit), bisect between the last rate held clean and this
//   one, or else cut: 2% for a 429 soon after another, 6, 18 and 30% while they repeat, never below what the API
//   admitted in the second before. A lone 429 at a held rate (no other episode within 3 s) is a request that
//   left a few ms late and crossed a window's edge: it holds the rate (a repeat within 3 s cuts).
// - A 429's wait is "within a second" when given in whole seconds (Retry-After: 1): every process's schedule is
//   held for two slots, doubling while the same second refuses more, up to the wait; the refused row alone waits
//   the whole Retry-After (rate/discovery.ts edgeHoldMs). A window refused at its last slot then loses one request,
//   not the next window's worth.
// - Hold there and probe. The pacer sends 2% under the rate, in whole requests a second from about 50/s (49
//   every second for a limit of 50: against fixed windows a pace of 49.5 puts 50 into every other window, and
//   one late request overflows it). Probes go +4% and at least one whole request a second more, after 30 s, the
//   gap doubling to 5 minutes while probes are refused (each refusal costs a 429 or two) or prove nothing, the
//   step doubling while they hold, so a raised limit is climbed to in seconds. A probe holds once it has run
//   1.5 s and sent a few requests more than its start would have; what it proves is what it sent, and that is
//   the rate held after it, so the pacer keeps its headroom under a level the API admitted. After the limit fell
//   (others' traffic on the same key, say), probe back toward the level held before every 8 s for 10 minutes,
//   by a quarter at least (a refused jump to twice the rate would fill a fixed window by its middle).
// - A long Retry-After (2 s or more) means a per-minute budget: the budget is what was admitted in the minute
//   before the 429, and the pacer spreads it evenly (rate = budget / 60). Probes then wait minutes.
// - Server signals beat estimates: RevenueCat-Rate-Limit-Current-Limit sets the rate at once and caps it (less
//   what -Current-Usage shows other clients use); backoff_ms / Retry-After set the pause and the window; a
//   429's wait holds the pacer's schedule for every process. --rate caps this process (a team keeping
//   headroom for its live app), and with --rate equal to the limit nothing changes from before: start there,
//   pace 2% under it.
// - A 429 with code 7638 (a busy user) and a 529 are not the limit: the worker never reports them here.
// Measured on the simulated API (test/rateDiscovery.test.ts) and against the sandbox (bench/scenarios/discovery.mjs).
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/connection.js';
import { DEFAULT_RATE_SCOPE, RedisKeys } from '../redis/keys.js';
import type { ApiResult } from '../revenuecat/client.js';
import type { Classification } from '../revenuecat/classify.js';
import {
  capOf,
  DEFAULT_DISCOVERY,
  effectiveRate,
  isExactWait,
  edgeHoldMs,
  onAnnounced,
  onJoin,
  onRateLimited,
  onTick,
  windowStart,
  type Decision,
  type DiscoveryParams,
  type LocalLimits,
  type RateState,
} from './rate/discovery.js';
import { describeRate, SharedRate, viewOf, type RateView } from './rate/sharedRate.js';
import { learnEdge, nextWindowStart, windowCountFrom, type EdgeBracket } from './rate/windowEdge.js';

export interface RateControllerOptions {
  /** --rate: the ceiling discovery never exceeds in this process, and the starting rate; absent = discover */
  configuredRate?: number | undefined;
  /** the limit scope (default: one limit for the whole queue) */
  scope?: string;
  /** the queue's pause for a 429 that names no wait */
  defaultWaitMs?: number;
  /** how often the shared state is re-read and the rules applied (ms) */
  tickMs?: number;
  params?: Partial<DiscoveryParams>;
  logger: Logger;
}

/** The rate this process applies, and what it is derived from. */
export interface AppliedRate {
  /** requests per second this process paces for (the learned rate under its cap) */
  rate: number;
  /** this process's cap (--rate or the announced limit), undefined when none */
  ceiling: number | undefined;
  /** the shared learned rate */
  learned: RateView;
}

/**
 * What a 429 of the limit asks of the worker: pause the whole queue for the wait, or, when every process's schedule
 * is held for less than it (a wait of "within a second": discovery.ts edgeHoldMs), only the refused row waits.
 */
export interface RateLimitAction {
  /** the queue's pause (ms); 0: only the refused row waits `rowWaitMs` */
  pauseMs: number;
  rowWaitMs: number;
}

/** A 429 of the limit, as the worker saw it. */
export interface RateLimitSignal {
  /** what the API asked to wait (backoff_ms, else Retry-After) */
  retryAfterMs?: number | undefined;
  /** how long the refused request took, to know when it was sent */
  durationMs?: number | undefined;
}

const WRITE_ATTEMPTS = 4;
/** Distinct Retry-After warnings per process: a server sending ever new values gets no more lines than this. */
const MAX_NOTES = 5;

export class RateController {
  private readonly shared: SharedRate;
  private readonly p: DiscoveryParams;
  private readonly local: LocalLimits;
  private readonly listeners: ((s: AppliedRate) => void)[] = [];
  private applied: AppliedRate;
  /** Redis clock minus local clock (ms), from the last round trip */
  private offset = 0;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<unknown> | undefined;
  /** the announced limit last written by this process, to write only changes */
  private announced = 0;
  /** the shared state as this process last read or wrote it */
  private seen: RateState | undefined;
  /** the Retry-After readings already warned about */
  private readonly notes = new Set<string>();
  /** a window start the pacer's log bracketed, not learned yet */
  private bracket: EdgeBracket | undefined;

  constructor(
    redis: RedisClient,
    prefix: string,
    private readonly options: RateControllerOptions,
  ) {
    this.p = { ...DEFAULT_DISCOVERY, ...options.params };
    this.shared = new SharedRate(redis, new RedisKeys(prefix), options.scope ?? DEFAULT_RATE_SCOPE);
    this.local = { configured: options.configuredRate };
    const rate = options.configuredRate ?? this.p.startRate;
    this.applied = {
      rate,
      ceiling: options.configuredRate,
      learned: { scope: this.shared.scope, rate, phase: options.configuredRate === undefined ? 'discovering' : 'holding', window: 'second' },
    };
  }

  get scope(): string {
    return this.shared.scope;
  }

  get current(): AppliedRate {
    return this.applied;
  }

  onChange(listener: (s: AppliedRate) => void): void {
    this.listeners.push(listener);
  }

  /** Joins the shared rate (a learned one stands; else --rate, else a safe start) and starts ticking. */
  async start(): Promise<AppliedRate> {
    await this.decide((state, now) => onJoin(state, now, this.local, this.p));
    this.options.logger.info({ scope: this.shared.scope, rate: round(this.applied.rate), learned: describeRate(this.applied.learned) }, 'request rate at start');
    if (!this.timer) {
      this.timer = setInterval(() => {
        if (this.ticking) return;
        this.ticking = this.refresh()
          .catch((err: unknown) => this.options.logger.warn({ err }, 'could not refresh the shared rate'))
          .finally(() => (this.ticking = undefined));
      }, this.options.tickMs ?? 250);
      this.timer.unref();
    }
    return this.applied;
  }

  /** Stops ticking (the shared state stays for the other processes and the next start). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
  }

  /** Reads the shared rate (another process may have changed it) and applies the rules: climb, confirm, probe. */
  async refresh(): Promise<AppliedRate> {
    // During a probe, also what it sent since it began (from the state this process last saw).
    const probe = this.seen && this.seen.probeFrom > 0 ? this.seen.probeAt : undefined;
    const counts = await this.counts(probe === undefined ? undefined : { since: probe });
    const sinceProbe = probe === undefined ? undefined : counts.admitted1;
    await this.decide((state, now) => (state ? onTick(state, now, { sent1: counts.sent1, ...(state.probeAt === probe ? { sinceProbe } : {}) }, this.local, this.p) : undefined));
    return this.applied;
  }

  /**
   * A 429 of the limit (not a busy user's, not a 529): learns from it, and says whether the queue pauses for it
   * (its wait also holds the pacer's schedule for every process) or only its row waits.
   */
  async rateLimited(signal: RateLimitSignal = {}): Promise<RateLimitAction> {
    const retryAfterMs = signal.retryAfterMs;
    const sentAt = Date.now() - (signal.durationMs ?? 0) + this.offset;
    const wait = retryAfterMs ?? this.options.defaultWaitMs ?? 0;
    const edgeMs = edgeHoldMs(this.seen, retryAfterMs, this.applied.rate);
    // Where the window is known to open again, the hold ends there (windowEdge.ts).
    const opensAt = edgeMs > 0 ? nextWindowStart(this.seen, sentAt) : 0;
    // With the window's start known, what was admitted since it is the limit, as with an exact backoff_ms.
    const exact = isExactWait(retryAfterMs) || opensAt > 0;
    const counts = await this.counts({
      sentAt,
      holdMs: wait,
      edgeMs,
      opensAt,
      from1: opensAt > 0 ? windowCountFrom(this.seen, opensAt) : windowStart(sentAt, retryAfterMs, 1000),
      from60: windowStart(sentAt, retryAfterMs, 60_000),
    });
    const event = {
      now: counts.now,
      sentAt,
      retryAfterMs,
      admitted1: counts.admitted1,
      admitted60: counts.admitted60,
      exact,
      opensAt,
    };
    await this.decide((state) => (state ? onRateLimited(state, event, this.local, this.p) : undefined));
    return { pauseMs: counts.heldMs < wait ? 0 : wait, rowWaitMs: wait };
  }

  /** The API said what its limit is (per minute) and, maybe, how much of it is used (by every client). */
  async limitAnnounced(perMinute: number, usage?: number): Promise<void> {
    if (!(perMinute > 0)) return;
    if (usage !== undefined && usage >= 0) {
      // Our own requests over the same minute, to tell other clients' usage apart (capOf).
      const counts = await this.counts();
      this.local.usage = { perMinute, usage, oursLastMinute: counts.sent60 };
    }
    if (perMinute === this.announced) return;
    this.announced = perMinute;
    await this.decide((state, now) => (state ? onAnnounced(state, now, perMinute, this.p) : undefined));
  }

  /**
   * Wires the worker's view of every answer: announced limits, and 429s of the limit (never 7638, never 529), for
   * which it says what the worker does (rateLimited).
   */
  async observe(result: ApiResult, verdict: Classification): Promise<RateLimitAction | undefined> {
    if (result.kind === 'response' && result.headers.retryAfterNote !== undefined) this.noteRetryAfter(result.headers.retryAfterNote);
    if (result.kind === 'response' && result.headers.rateLimitPerMinute !== undefined) {
      await this.limitAnnounced(result.headers.rateLimitPerMinute, result.headers.rateLimitUsage);
    }
    if (verdict.kind === 'transient' && verdict.rateLimited) {
      return this.rateLimited({ retryAfterMs: verdict.retryAfterMs, durationMs: result.durationMs });
    }
    return undefined;
  }

  /** One warning line per distinct reinterpreted wait (the header's value is in it), not one per answer. */
  private noteRetryAfter(note: string): void {
    if (this.notes.has(note) || this.notes.size >= MAX_NOTES) return;
    this.notes.add(note);
    this.options.logger.warn({ scope: this.shared.scope }, note);
  }

  private async counts(around?: Parameters<SharedRate['counts']>[0]): Promise<Awaited<ReturnType<SharedRate['counts']>>> {
    const before = Date.now();
    const counts = await this.shared.counts(around);
    this.offset = counts.now - (before + Date.now()) / 2;
    // A window's start bracketed by the pacer's log (any call may resolve one): learned at the next decision.
    if (counts.edgeBracket) this.bracket = counts.edgeBracket;
    return counts;
  }

  /** Read, decide, write unless someone wrote meanwhile (then again); then apply what is stored. */
  private async decide(rule: (state: RateState | undefined, now: number) => Decision | undefined): Promise<void> {
    const bracket = this.bracket;
    this.bracket = undefined;
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const stored = await this.shared.read();
      const now = Date.now() + this.offset;
      const decision = withEdge(stored?.state, rule(stored?.state, now), bracket);
      if (!decision) {
        if (stored) this.apply(stored.state, now);
        return;
      }
      if (await this.shared.write(decision.next, stored?.version ?? '')) {
        if (decision.reason) this.log(stored?.state, decision);
        this.apply(decision.next, now);
        return;
      }
    }
    // Others kept writing: their decisions stand; this one is dropped (the next tick or 429 decides again).
    const stored = await this.shared.read();
    if (stored) this.apply(stored.state, Date.now() + this.offset);
  }

  private apply(state: RateState, now: number): void {
    this.seen = state;
    const cap = capOf(state, this.local, now, this.p);
    const next: AppliedRate = {
      rate: effectiveRate(state, this.local, now, this.p),
      ceiling: Number.isFinite(cap) ? cap : undefined,
      learned: viewOf(this.shared.scope, state),
    };
    const changed = next.rate !== this.applied.rate || next.ceiling !== this.applied.ceiling;
    this.applied = next;
    if (changed) for (const l of this.listeners) l(next);
  }

  private log(before: RateState | undefined, d: Decision): void {
    const from = before?.rate;
    const to = d.next.rate;
    const fields = {
      scope: this.shared.scope,
      rate: round(to),
      ...(from !== undefined ? { from: round(from) } : {}),
      reason: d.reason,
      window: d.next.window === 60 ? 'minute' : 'second',
    };
    // Finding and following the limit is the tool working as meant: info for run.log, never a warning on screen
    // (the bar shows the rate, and the display says so in a sentence when the limit is found or moves).
    if (from !== undefined && to < from) this.options.logger.info(fields, 'request rate lowered');
    else if (from !== undefined && to > from) this.options.logger.info(fields, 'request rate raised');
    else this.options.logger.debug(fields, 'request rate kept');
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

/** A decision with a bracketed window start learned too (windowEdge.ts); bookkeeping only when nothing else changed. */
function withEdge(state: RateState | undefined, decision: Decision | undefined, bracket: EdgeBracket | undefined): Decision | undefined {
  const base = decision?.next ?? state;
  const edges = bracket && base ? learnEdge(base.edges, bracket) : undefined;
  return edges === undefined || !base ? decision : { ...decision, next: { ...base, edges } };
}
