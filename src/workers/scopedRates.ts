// The worker's limit scopes (rateScope.ts): one rate controller and one pacer for the whole run (rateLimitScope
// 'run', the default), or one of each per key ('key'), each learning and pacing its own scope. BullMQ's limiter
// and the number of requests in flight serve every key at once, so they follow the sum of the scopes' rates; the
// pacers set each key's own spacing.
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/connection.js';
import type { KeyInfo, KeyRing } from '../revenuecat/keyRing.js';
import { Pacer } from './pacer.js';
import { RateController } from './rateController.js';
import { rateScopeOf } from './rateScope.js';

interface Scope {
  rate: RateController;
  pacer: Pacer;
}

export class ScopedRates {
  /** every scope, the run's (or the first key's) first */
  private readonly scopes: Scope[] = [];
  /** by key fingerprint, with one scope per key; empty with one scope for the run */
  private readonly byKey = new Map<string, Scope>();

  constructor(
    private readonly redis: RedisClient,
    private readonly config: Config,
    keys: KeyRing,
    private readonly logger: Logger,
  ) {
    const perKey = config.rateLimitScope === 'key' ? keys.keys() : [];
    if (perKey.length === 0) {
      this.scopes.push(this.scope(undefined));
      return;
    }
    for (const key of perKey) {
      const scope = this.scope(rateScopeOf(config, key));
      this.scopes.push(scope);
      this.byKey.set(key.fingerprint, scope);
    }
  }

  private scope(name: string | undefined): Scope {
    const config = this.config;
    const rate = new RateController(this.redis, config.prefix, {
      configuredRate: config.ratePerSecond,
      defaultWaitMs: config.rateLimitDefaultWaitMs,
      ...(name !== undefined ? { scope: name } : {}),
      params: {
        headroom: config.rateHeadroom,
        startRate: config.rateStartPerSecond,
        floorRate: config.rateFloorPerSecond,
        growth: config.rateGrowth,
        stepMs: config.rateGrowthStepMs,
        nudge: config.rateNudge,
        maxCut: config.rateMaxCut,
      },
      logger: this.logger,
    });
    // The pacer's rate is set at start() and follows the controller's.
    const pacer = new Pacer(this.redis, config.prefix, rate.current.rate * config.rateHeadroom, config.pacerMaxWaitMs, rate.scope);
    pacer.wholeRequests = config.ratePerSecond === undefined;
    rate.onChange((s) => {
      pacer.rate = s.rate * config.rateHeadroom;
    });
    return { rate, pacer };
  }

  /** Every controller, the run's (or the first key's) first. */
  get controllers(): RateController[] {
    return this.scopes.map((s) => s.rate);
  }

  /** The pacer of the run's scope: with one scope per key, the first key's (each key's is `pacerFor`). */
  get pacer(): Pacer {
    return this.scopes[0]!.pacer;
  }

  /** With one scope per key: the key's pacer; undefined with one scope for the run (the processor's `pacer`). */
  pacerFor(key: KeyInfo): Pacer | undefined {
    return this.byKey.get(key.fingerprint)?.pacer;
  }

  /** The controller that learns from the answers a key got. */
  controllerFor(key: KeyInfo): RateController {
    return (this.byKey.get(key.fingerprint) ?? this.scopes[0]!).rate;
  }

  /** Requests per second of every scope together: what BullMQ's limiter and the concurrency are sized for. */
  get total(): number {
    return this.scopes.reduce((sum, s) => sum + s.rate.current.rate, 0);
  }

  /** Joins every scope's shared rate; the total they start at. */
  async start(): Promise<number> {
    await Promise.all(this.scopes.map((s) => s.rate.start()));
    for (const s of this.scopes) s.pacer.rate = s.rate.current.rate * this.config.rateHeadroom;
    return this.total;
  }

  /** Calls `listener` with the new total whenever a scope's rate changes. */
  onChange(listener: (total: number) => void): void {
    for (const s of this.scopes) s.rate.onChange(() => listener(this.total));
  }

  async stop(): Promise<void> {
    await Promise.all(this.scopes.map((s) => s.rate.stop()));
  }
}
