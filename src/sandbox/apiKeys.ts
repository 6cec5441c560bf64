// Which Bearer keys the sandbox accepts, and for which rows. RevenueCat's public keys belong to one app and so
// to one store (`appl_…` App Store, `goog_…` Play, …); a secret `sk_…` key is project-wide (RevenueCat's
// authentication docs). The knobs: `apiKeys` are accepted for every platform (a catch-all, as one key per project was),
// `platformApiKeys` binds keys to X-Platform values, `revokedApiKeys` turns keys off without forgetting them.
// Every refusal is 401 with code 7225 (invalid API key), which RevenueCat's SDKs treat as final for every
// further request: a client must stop that key's work.
import { createHash } from 'node:crypto';
import { isPlatform, type Platform } from './contract/platforms.js';

export interface KeyKnobs {
  apiKeys: readonly string[];
  platformApiKeys: Readonly<Partial<Record<Platform, readonly string[]>>>;
  revokedApiKeys: readonly string[];
}

/** A key as GET /_sandbox/keys shows it: by label, never the key itself. */
export interface KeyState {
  label: string;
  /** `['*']` for a catch-all key, else its X-Platform values. */
  platforms: string[];
  revoked: boolean;
}

/** `*` = every platform (a catch-all key). */
export type KeyScope = '*' | Platform[];

export type KeyCheck = { ok: true; key: string; scope: KeyScope } | { ok: false; reason: 'unknown' | 'revoked' | 'other_platform'; message: string; scope?: KeyScope };

/** The platforms a key may post for, or undefined when the sandbox does not know the key. */
export function keyScope(knobs: KeyKnobs, key: string): KeyScope | undefined {
  if (knobs.apiKeys.includes(key)) return '*';
  const platforms = (Object.entries(knobs.platformApiKeys) as [Platform, readonly string[]][]).filter(([, keys]) => keys.includes(key)).map(([platform]) => platform);
  return platforms.length > 0 ? platforms : undefined;
}

/** Every key the sandbox knows (catch-all and per platform), each once. */
export function knownKeys(knobs: KeyKnobs): string[] {
  return [...new Set([...knobs.apiKeys, ...Object.values(knobs.platformApiKeys).flatMap((keys) => keys ?? [])])];
}

/**
 * May `key` make this request? `platformHeader` is the request's X-Platform: a platform-bound key is refused
 * for another valid platform; a missing or invalid header is left to the X-Platform check (400 / 7000).
 */
export function checkKey(knobs: KeyKnobs, key: string, platformHeader: string | undefined): KeyCheck {
  const scope = keyScope(knobs, key);
  if (scope === undefined) {
    return { ok: false, reason: 'unknown', message: 'Invalid API key. Check the key in use is a current public SDK key (or secret key) of this project.' };
  }
  if (knobs.revokedApiKeys.includes(key)) {
    return { ok: false, reason: 'revoked', scope, message: 'Invalid API key: this key has been revoked.' };
  }
  if (scope !== '*' && platformHeader !== undefined && isPlatform(platformHeader) && !scope.includes(platformHeader)) {
    return {
      ok: false,
      reason: 'other_platform',
      scope,
      message: `Invalid API key for X-Platform ${platformHeader}: this key belongs to the ${scope.join('/')} app.`,
    };
  }
  return { ok: true, key, scope };
}

/**
 * How stats name a key: its first 8 characters and 4 hex digits of its hash (`appl_san…3f9a`), enough to tell
 * keys apart in a report without writing a usable key into it.
 */
export function keyLabel(key: string): string {
  const digest = createHash('sha256').update(key).digest('hex').slice(0, 4);
  return `${key.slice(0, Math.min(8, Math.max(1, key.length - 4)))}…${digest}`;
}

/** A scope as stats write it: `['*']` for a catch-all key, the platforms otherwise, `[]` for an unknown key. */
export function scopeNames(scope: KeyScope | undefined): string[] {
  return scope === undefined ? [] : scope === '*' ? ['*'] : [...scope];
}

/** The label of requests whose key the sandbox does not know. */
export const UNKNOWN_KEY_LABEL = 'unknown';
