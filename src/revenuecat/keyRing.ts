// Which API key sends which rows. RevenueCat's public SDK keys belong to one app, and so to one store (`appl_…`
// App Store, `goog_…` Play, `amzn_…`, `strp_…`, …); a secret `sk_…` key is project-wide. A run may hold one key
// per platform (REVENUECAT_API_KEY_IOS, _ANDROID, …, or their …_FILE variants) and REVENUECAT_API_KEY for the
// platforms without their own.
//
// The ring holds the keys in memory only. What may leave it is what names a key without giving it away: the
// variable it came from, its first characters (`goog_ab…`) and a fingerprint (the first 8 hex digits of its
// SHA-256), which Redis stores with a key's fatal stop so that another process can tell whether it holds the
// same key.
import { createHash } from 'node:crypto';
import { ConfigError, PLATFORM_API_KEYS, platformKeyVariable, type Config } from '../config.js';
import { PLATFORMS, type Platform } from './fields.js';

/** The variable of the key for every platform without its own. */
export const DEFAULT_KEY_VARIABLE = 'REVENUECAT_API_KEY';

// The config's table must name exactly the X-Platform values.
const CONFIG_KEYS: Record<Platform, (typeof PLATFORM_API_KEYS)[Platform]> = PLATFORM_API_KEYS;

/** A key as the rest of the pipeline may see it: never the key itself. */
export interface KeyInfo {
  /** the environment variable it came from (REVENUECAT_API_KEY_ANDROID, or REVENUECAT_API_KEY) */
  variable: string;
  /** its first characters, e.g. `goog_ab…` */
  label: string;
  /** first 8 hex digits of its SHA-256 */
  fingerprint: string;
  /** the platforms this process sends with it */
  platforms: Platform[];
}

/** What ingest needs to know: which platforms have a key, and what to say about a row whose platform has none. */
export interface KeyPlan {
  has(platform: Platform): boolean;
  /** e.g. `no API key for android: set REVENUECAT_API_KEY_ANDROID or REVENUECAT_API_KEY` */
  missing(platform: Platform): string;
}

/** The reason of a row whose platform has no key. */
export function missingKeyReason(platform: Platform): string {
  return `no API key for ${platform}: set ${platformKeyVariable(platform)} or ${DEFAULT_KEY_VARIABLE}`;
}

/** A short non-reversible name for a key, stored in Redis to compare keys across processes. */
export function keyFingerprint(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/**
 * The first characters of a key, for messages: its type prefix and two more (`goog_ab…`, `sk_Xy…`), or four
 * characters for a key without one, and never more than a third of the key.
 */
export function keyLabel(key: string): string {
  const underscore = key.indexOf('_');
  const head = underscore > 0 && underscore <= 5 ? key.slice(0, underscore + 3) : key.slice(0, 4);
  return `${head.slice(0, Math.max(1, Math.floor(key.length / 3)))}…`;
}

/** Whose rows a key sends, for messages: `android`, `ios/macos`, or `all` when it serves every platform. */
export function rowsOf(platforms: readonly string[]): string {
  return platforms.length === PLATFORMS.length ? 'all' : platforms.join('/');
}

interface Held {
  secret: string;
  info: KeyInfo;
}

export class KeyRing implements KeyPlan {
  readonly #byPlatform = new Map<Platform, Held>();
  readonly #distinct: Held[] = [];

  /** `keys`: the key of each platform that has one, with the variable it came from. */
  constructor(keys: Partial<Record<Platform, { key: string; variable: string }>>) {
    const byKey = new Map<string, Held>();
    for (const platform of PLATFORMS) {
      const given = keys[platform];
      if (given === undefined) continue;
      let held = byKey.get(given.key);
      if (!held) {
        held = { secret: given.key, info: { variable: given.variable, label: keyLabel(given.key), fingerprint: keyFingerprint(given.key), platforms: [] } };
        byKey.set(given.key, held);
        this.#distinct.push(held);
      } else if (held.info.variable !== given.variable && given.variable !== DEFAULT_KEY_VARIABLE) {
        // One key under several variables: name the platform's own variable, which is what the user would change.
        held.info.variable = given.variable;
      }
      held.info.platforms.push(platform);
      this.#byPlatform.set(platform, held);
    }
  }

  /** The key of a platform, or undefined when this process has none for it. */
  forPlatform(platform: Platform): KeyInfo | undefined {
    const held = this.#byPlatform.get(platform);
    return held ? { ...held.info, platforms: [...held.info.platforms] } : undefined;
  }

  has(platform: Platform): boolean {
    return this.#byPlatform.has(platform);
  }

  missing(platform: Platform): string {
    return missingKeyReason(platform);
  }

  /** Platforms with a key. */
  platforms(): Platform[] {
    return [...this.#byPlatform.keys()];
  }

  /** Every distinct key, once. */
  keys(): KeyInfo[] {
    return this.#distinct.map((h) => ({ ...h.info, platforms: [...h.info.platforms] }));
  }

  /** The key itself, for the HTTP client's Authorization header only. */
  secretFor(platform: Platform): string | undefined {
    return this.#byPlatform.get(platform)?.secret;
  }

  /** Removes every key of the ring from a text (error messages, bodies). */
  redact(text: string, replacement = '[redacted]'): string {
    let out = text;
    for (const held of this.#distinct) out = out.split(held.secret).join(replacement);
    return out;
  }

  /** Never the keys: what a log or JSON.stringify of the ring shows. */
  toJSON(): { keys: KeyInfo[] } {
    return { keys: this.keys() };
  }
}

function checkKey(variable: string, value: string): string {
  const key = value.trim();
  if (key === '') throw new ConfigError(`${variable} is empty: set it to the app's public SDK key, or unset it`);
  if (/[\0-\x1f\x7f\s]/.test(key)) throw new ConfigError(`${variable} contains whitespace or control characters: copy the key again without spaces or newlines`);
  return key;
}

/** Whether the configuration holds any API key (the default one or a platform's). */
export function hasAnyKey(config: Config): boolean {
  return config.apiKey !== undefined || PLATFORMS.some((p) => config[CONFIG_KEYS[p]] !== undefined);
}

/**
 * The keys of a sending process, checked: a ConfigError names the variable that is wrong (never its value), and
 * says how to give a key when there is none at all.
 */
export function keyRingOf(config: Config): KeyRing {
  if (!hasAnyKey(config)) {
    throw new ConfigError(
      `${DEFAULT_KEY_VARIABLE} is not set: export the app's public SDK key (appl_…, goog_…, amzn_…, strp_…) or a secret key (sk_…) as ${DEFAULT_KEY_VARIABLE}, or one key per platform as ${platformKeyVariable('ios')}, ${platformKeyVariable('android')}, …; or put a key in a file and set the variable's …_FILE twin to its path`,
    );
  }
  const fallback = config.apiKey === undefined ? undefined : checkKey(DEFAULT_KEY_VARIABLE, config.apiKey);
  const keys: Partial<Record<Platform, { key: string; variable: string }>> = {};
  for (const platform of PLATFORMS) {
    const own = config[CONFIG_KEYS[platform]];
    if (own !== undefined) keys[platform] = { key: checkKey(platformKeyVariable(platform), own), variable: platformKeyVariable(platform) };
    else if (fallback !== undefined) keys[platform] = { key: fallback, variable: DEFAULT_KEY_VARIABLE };
  }
  return new KeyRing(keys);
}

/**
 * The key plan an ingest checks rows against: the keys of the ingesting process. A process without any key
 * (an `ingest` on a machine that only queues) checks nothing: the workers answer for their own keys.
 */
export function keyPlanOf(config: Config): KeyPlan | undefined {
  if (!hasAnyKey(config)) return undefined;
  // Checked like a sending process's keys, then reduced to the platforms: the plan carries no key.
  const platforms = new Set(keyRingOf(config).platforms());
  return { has: (p) => platforms.has(p), missing: missingKeyReason };
}
