// One request rate for the whole queue, shared by every worker process through Redis, that adapts:
// - a `RevenueCat-Rate-Limit-Current-Limit` header caps it (the API knows its limit better than we do);
// - 429s lower it (multiplicative decrease, at most once per cooldown, whichever process saw them);
// - quiet periods raise it again by a small step, up to the ceiling (additive increase).
// Each process applies the shared rate to its own BullMQ limiter, which BullMQ enforces across processes.
import type { RedisClient } from '../redis/connection.js';
import type { Logger } from '../logger.js';

export interface RateControllerOptions {
  /** the configured rate: the starting rate and the ceiling (requests per second) */
  configuredRate: number;
  /** never below this (requests per second) */
  floorRate?: number;
  decreaseFactor?: number;
  /** minimum time between two decreases: one burst of 429s is one signal, not fifty */
  decreaseCooldownMs?: number;
  /** quiet time (no 429) before each increase */
  increaseEveryMs?: number;
  /** each increase, as a share of the ceiling */
  increaseStep?: number;
  logger: Logger;
  now?: () => number;
}

export interface RateState {
  rate: number;
  ceiling: number;
}

// KEYS[1] rate hash. ARGV: now, factor, cooldown, floor. Returns the new rate, or '' when in cooldown.
const DECREASE = `
local now = tonumber(ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[1], 'last_429') or '0')
redis.call('HSET', KEYS[1], 'last_429', now)
local lastDown = tonumber(redis.call('HGET', KEYS[1], 'last_decrease') or '0')
if now - lastDown < tonumber(ARGV[3]) then return '' end
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate'))
local nextRate = math.max(tonumber(ARGV[4]), rate * tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'rate', tostring(nextRate), 'last_decrease', now, 'last_change', now)
return tostring(nextRate)
`;

// KEYS[1]. ARGV: now, quietMs, step. Raises the rate by one step when nothing was rate limited for quietMs
// and nobody raised it during that time either. Returns the new rate or ''.
const INCREASE = `
local now = tonumber(ARGV[1])
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate'))
local ceiling = tonumber(redis.call('HGET', KEYS[1], 'ceiling'))
if rate >= ceiling then return '' end
local last429 = tonumber(redis.call('HGET', KEYS[1], 'last_429') or '0')
local lastChange = tonumber(redis.call('HGET', KEYS[1], 'last_change') or '0')
local quiet = tonumber(ARGV[2])
if now - last429 < quiet or now - lastChange < quiet then return '' end
local nextRate = math.min(ceiling, rate + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'rate', tostring(nextRate), 'last_change', now)
return tostring(nextRate)
`;

// KEYS[1]. ARGV: now, ceiling. Sets the ceiling; the rate follows it down at once (never up: that is AIMD's job).
const SET_CEILING = `
local ceiling = tonumber(ARGV[2])
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or ARGV[2])
local nextRate = math.min(rate, ceiling)
redis.call('HSET', KEYS[1], 'ceiling', ARGV[2], 'rate', tostring(nextRate))
if nextRate ~= rate then redis.call('HSET', KEYS[1], 'last_change', ARGV[1]) end
return tostring(nextRate)
`;

// KEYS[1]. ARGV: now, configured rate. A process joining sets the ceiling; the rate starts there unless the
// API said 429 within the last minute (then the lowered rate stands, capped by the new ceiling).
const START = `
local now = tonumber(ARGV[1])
local configured = tonumber(ARGV[2])
local last429 = tonumber(redis.call('HGET', KEYS[1], 'last_429') or '0')
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or ARGV[2])
if now - last429 > 60000 then rate = configured else rate = math.min(rate, configured) end
redis.call('HSET', KEYS[1], 'ceiling', ARGV[2], 'rate', tostring(rate), 'last_change', now)
return tostring(rate)
`;

export const rateKey = (prefix: string): string => `${prefix}:rate`;

/** Decrease for a 429 that came while under the API's announced limit. */
const JITTER_DECREASE = 0.98;

export class RateController {
  private readonly key: string;
  private readonly opts: Required<Omit<RateControllerOptions, 'logger' | 'now'>>;
  private readonly now: () => number;
  private state: RateState;
  private headerLimit: number | undefined;
  private readonly listeners: ((s: RateState) => void)[] = [];

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly options: RateControllerOptions,
  ) {
    this.key = rateKey(prefix);
    this.now = options.now ?? Date.now;
    this.opts = {
      configuredRate: options.configuredRate,
      floorRate: options.floorRate ?? Math.min(1, options.configuredRate),
      decreaseFactor: options.decreaseFactor ?? 0.85,
      decreaseCooldownMs: options.decreaseCooldownMs ?? 2000,
      increaseEveryMs: options.increaseEveryMs ?? 3000,
      increaseStep: options.increaseStep ?? 0.05,
    };
    this.state = { rate: options.configuredRate, ceiling: options.configuredRate };
  }

  get current(): RateState {
    return this.state;
  }

  onChange(listener: (s: RateState) => void): void {
    this.listeners.push(listener);
  }

  /** Joins the shared state: the configured rate becomes the ceiling and, if lower, the rate. */
  async start(): Promise<RateState> {
    await this.redis.eval(START, 1, this.key, String(this.now()), String(this.opts.configuredRate));
    return this.refresh();
  }

  /** Reads the shared rate (another process may have changed it) and raises it after a quiet period. */
  async refresh(): Promise<RateState> {
    const raised = (await this.redis.eval(
      INCREASE,
      1,
      this.key,
      String(this.now()),
      String(this.opts.increaseEveryMs),
      String(this.state.ceiling * this.opts.increaseStep),
    )) as string;
    if (raised) this.options.logger.info({ rate: Number(raised), reason: 'no 429s lately' }, 'request rate raised');
    const raw = await this.redis.hmget(this.key, 'rate', 'ceiling');
    this.update({ rate: Number(raw[0] ?? this.state.rate), ceiling: Number(raw[1] ?? this.state.ceiling) });
    return this.state;
  }

  /**
   * A 429 that was not about one busy user. Above the API's announced limit it means the rate is too high: cut
   * it. At or below it, it is timing jitter at the edge of the API's window: step down only a little, since the
   * queue already waits out the Retry-After.
   */
  async rateLimited(): Promise<void> {
    const withinAnnounced = this.headerLimit !== undefined && this.state.rate <= this.headerLimit / 60;
    const lowered = (await this.redis.eval(
      DECREASE,
      1,
      this.key,
      String(this.now()),
      String(withinAnnounced ? JITTER_DECREASE : this.opts.decreaseFactor),
      String(this.opts.decreaseCooldownMs),
      String(this.opts.floorRate),
    )) as string;
    if (lowered) {
      this.options.logger.warn({ rate: Number(lowered), reason: '429 from the API' }, 'request rate lowered');
      this.update({ ...this.state, rate: Number(lowered) });
    }
  }

  /** The API said what its limit is (per minute): never go above it, nor above the configured rate. */
  async limitAnnounced(perMinute: number): Promise<void> {
    if (!(perMinute > 0) || perMinute === this.headerLimit) return;
    this.headerLimit = perMinute;
    const ceiling = Math.min(this.opts.configuredRate, perMinute / 60);
    if (ceiling === this.state.ceiling) return;
    const rate = Number(await this.redis.eval(SET_CEILING, 1, this.key, String(this.now()), String(ceiling)));
    this.options.logger.info({ ceiling, rate, announcedPerMinute: perMinute }, 'request rate capped by the API\'s announced limit');
    this.update({ rate, ceiling });
  }

  private update(next: RateState): void {
    const changed = next.rate !== this.state.rate || next.ceiling !== this.state.ceiling;
    this.state = next;
    if (changed) for (const l of this.listeners) l(next);
  }
}

/** Share of the rate the pacer spaces requests for: requests leave a few ms after their slot, and against an API
 *  that counts over a sliding second that jitter alone would sometimes make 101 out of 100. */
export const RATE_HEADROOM = 0.98;
/** Narrowest limiter window: below this BullMQ's own round trips would blur the spacing. */
const MIN_WINDOW_MS = 20;

/**
 * BullMQ's limiter allows `max` jobs per `duration` window. Short windows spread the requests evenly over each
 * second instead of sending a second's worth at once. The window is rounded up, never down, so the effective
 * rate stays under the rate; `max` grows until that rounding costs under 1% (100/s: 5 per 51 ms). It is the
 * queue-wide cap; the pacer (pacer.ts), slightly slower (RATE_HEADROOM), sets the actual even spacing, so the
 * limiter's windows (which drift later by each fetch's delay) never decide the pace.
 */
export function limiterFor(ratePerSecond: number): { max: number; duration: number } {
  const target = ratePerSecond;
  for (let max = 1; ; max++) {
    const duration = Math.ceil((max * 1000) / target);
    if (duration >= MIN_WINDOW_MS && (max * 1000) / duration >= target * 0.99) return { max, duration };
    if (max >= 1000) return { max, duration };
  }
}

/** In-flight requests needed so that latency does not cap the rate: rate × latency, with headroom. */
export function concurrencyFor(ratePerSecond: number, latencyMs: number, ceiling: number): number {
  return Math.max(1, Math.min(ceiling, Math.ceil(ratePerSecond * (latencyMs / 1000) * 1.5) + 1));
}
