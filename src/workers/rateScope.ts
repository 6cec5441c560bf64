// Whether the apps of one RevenueCat project share one rate limit is not published, so it is a setting
// (config rateLimitScope): 'run' (the default) has every key of the run share one learned rate, 'key' gives
// each key a limit scope of its own, named by the key's fingerprint (never the key), in which discovery runs on
// its own (rateController.ts takes the scope, pacer.ts paces it).
import type { Config } from '../config.js';
import { DEFAULT_RATE_SCOPE } from '../redis/keys.js';
import type { KeyInfo } from '../revenuecat/keyRing.js';

/** The limit scope of the rows a key sends. */
export function rateScopeOf(config: Pick<Config, 'rateLimitScope'>, key: Pick<KeyInfo, 'fingerprint'>): string {
  return config.rateLimitScope === 'key' ? `key-${key.fingerprint}` : DEFAULT_RATE_SCOPE;
}
