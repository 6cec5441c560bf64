// The learned request rate in a run's progress (issue 9): the bar and the progress log line show what the
// workers pace for, read from Redis like `status` reads it, so they show the rate every process shares, not
// only this one's. With one limit per key (rateLimitScope 'key') each key's scope is read and they add up.
import type { Config } from '../config.js';
import type { RedisClient } from '../redis/connection.js';
import { APPLE_RATE_SCOPE, DEFAULT_RATE_SCOPE, RedisKeys } from '../redis/keys.js';
import type { KeyRing } from '../revenuecat/keyRing.js';
import type { RunState } from '../types.js';
import { readRateState, type RateView } from '../workers/rate/sharedRate.js';
import { rateScopeOf } from '../workers/rateScope.js';

/** The session's `progress` event: the run's counters, and the learned rate of each scope its keys send in. */
export type RunProgress = RunState & {
  /** one per limit scope that has a learned rate; absent when none could be read */
  rates?: RateView[];
  /** the App Store Server API lookups' rate (scope 'apple'), only for a run whose rows were looked up */
  lookupRate?: RateView;
};

/** The limit scopes a run's rows are sent in: the run's one, or one per key of the ring. */
export function rateScopesOf(config: Pick<Config, 'rateLimitScope'>, keys: KeyRing | undefined): string[] {
  if (config.rateLimitScope !== 'key' || !keys) return [DEFAULT_RATE_SCOPE];
  const scopes = [...new Set(keys.keys().map((k) => rateScopeOf(config, k)))];
  return scopes.length > 0 ? scopes : [DEFAULT_RATE_SCOPE];
}

/** The learned rates of the scopes that have one (read-only). */
export async function readRates(redis: RedisClient, prefix: string, scopes: readonly string[]): Promise<RateView[]> {
  const keys = new RedisKeys(prefix);
  const views = await Promise.all(scopes.map((s) => readRateState(redis, keys, s)));
  return views.filter((v): v is RateView => v !== undefined);
}

/**
 * The lookups' rate of a run, for its progress: read only once the run is known to have lookups (its meta says
 * so: one HEXISTS a second until then), so a run without transaction-id rows shows none.
 */
export function lookupRateReader(redis: RedisClient, prefix: string, hadLookups: () => Promise<boolean>): () => Promise<RateView | undefined> {
  let seen = false;
  const keys = new RedisKeys(prefix);
  return async () => {
    seen ||= await hadLookups();
    return seen ? readRateState(redis, keys, APPLE_RATE_SCOPE) : undefined;
  };
}

/**
 * The rate in a few words, for the progress bar and line: "48.5/s learned", "5.00/s discovering", "25.0/s
 * configured"; the sum over several scopes says how many ("97.0/s learned, 2 keys"). Undefined without any.
 */
export function briefRate(views: readonly RateView[] | undefined): string | undefined {
  if (!views || views.length === 0) return undefined;
  const total = views.reduce((sum, v) => sum + v.rate, 0);
  const how = views.some((v) => v.phase === 'discovering') ? 'discovering' : views.some((v) => v.learnedAt !== undefined) ? 'learned' : 'configured';
  const perSecond = total >= 10 ? total.toFixed(1) : total.toFixed(2);
  return `${perSecond}/s ${how}${views.length > 1 ? `, ${views.length} keys` : ''}`;
}
