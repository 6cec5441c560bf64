// The sandbox's knobs. One strict schema serves three callers: startSandbox(), configure() / POST
// /_sandbox/config, and a CLI whose flags arrive as strings (hence the coercions and the comma list).
import { z } from 'zod';
import { DEFAULT_APPLE_OPTIONS, appleOptionShape, type AppleSandboxOptions } from './appleOptions.js';
import { PLATFORMS, isPlatform, type Platform } from './contract/platforms.js';
import { WINDOW_KINDS, type WindowKind } from './rateLimiter.js';
import { parseScheduleText, type RateLimitStep } from './rateSchedule.js';

/** Which answers carry RevenueCat-Rate-Limit-Current-Limit / -Usage: v2's only (documented), v1's too, none. */
export type RateLimitHeaders = 'v2' | 'all' | 'none';

/** The App Store knobs (restore behaviour, App Store Server API) are in appleOptions.ts. */
export interface SandboxOptions extends AppleSandboxOptions {
  /** 0 = any free port. */
  port?: number;
  host?: string;
  /** Bearer keys accepted for every platform. A key starting with `sk_` is secret (subscriber_attributes shown). */
  apiKeys?: string[];
  /** Keys accepted only for rows of their X-Platform values (a public key is one app's); others answer 401 / 7225. */
  platformApiKeys?: Partial<Record<Platform, string[]>>;
  /** Known keys that answer 401 / 7225 until taken off this list (a key revoked in the dashboard). */
  revokedApiKeys?: string[];
  /** v1 limit per second (0 = none), shared by POST /v1/receipts and GET /v1/subscribers. */
  rateLimitPerSecond?: number;
  /** v1 limit per minute (0 = none): a burst may spend it in seconds, then 429s until the window frees. */
  rateLimitPerMinute?: number;
  /** How the v1 windows are counted: `sliding` (the last second / minute) or `fixed` (from the start, reset at each boundary). */
  rateLimitWindow?: WindowKind;
  /** v1 limits that change over time (rateSchedule.ts); the clock starts at start, when set, and on reset. */
  rateLimitSchedule?: RateLimitStep[];
  /** Which answers carry RevenueCat-Rate-Limit-Current-Limit / -Usage when a limit is set. `true` = all, `false` = none. */
  rateLimitHeaders?: RateLimitHeaders | boolean;
  /** v1 429 / 7429 bodies carry v2-style `backoff_ms` (RevenueCat documents it for v2 only). */
  rateLimitBackoffMs?: boolean;
  /** No rate limit (v1 or v2) and no latency, whatever those knobs say: for throughput benchmarks. */
  unlimited?: boolean;
  /** Status of the same-user overlap answer (code 7638): 429 as documented, or 529 as RevenueCat also sends. */
  overlapStatus?: 429 | 529;
  latencyMs?: number;
  latencyJitterMs?: number;
  fault5xxRate?: number;
  resetRate?: number;
  hangRate?: number;
  hangMs?: number;
  seed?: number;
  /** Epoch milliseconds; used for dates in responses, never for rate limiting or latency. */
  now?: () => number;
  /** v2: the project id in /v2/projects/{project_id}/…; any other id answers 404. */
  projectId?: string;
  /** v2 Customer Information domain limit (customers, active_entitlements, subscriptions, purchases). 0 = off. */
  v2RateLimitPerMinute?: number;
  /** v2 Project Configuration domain limit (entitlements, products catalog). 0 = off. */
  v2ConfigRateLimitPerMinute?: number;
  /**
   * The sliding window the v2 limits are counted over. 60000 (a minute) is the documented meaning; a shorter
   * window admits the limit × window / 60000 requests per window, so a test can put a client under a
   * per-minute limit in seconds rather than minutes.
   */
  v2RateLimitWindowMs?: number;
  /** v2 list page size when the request sends no `limit`. */
  v2PageSize?: number;
}

export type ResolvedSandboxOptions = Required<Omit<SandboxOptions, 'rateLimitHeaders'>> & { rateLimitHeaders: RateLimitHeaders };

export const DEFAULT_SANDBOX_OPTIONS: Readonly<ResolvedSandboxOptions> = Object.freeze({
  port: 0,
  host: '127.0.0.1',
  apiKeys: ['appl_sandbox_key'],
  platformApiKeys: {},
  revokedApiKeys: [],
  rateLimitPerSecond: 0,
  rateLimitPerMinute: 0,
  rateLimitWindow: 'sliding',
  rateLimitSchedule: [],
  rateLimitHeaders: 'v2',
  rateLimitBackoffMs: false,
  unlimited: false,
  overlapStatus: 429,
  latencyMs: 0,
  latencyJitterMs: 0,
  fault5xxRate: 0,
  resetRate: 0,
  hangRate: 0,
  hangMs: 30_000,
  seed: 1,
  now: () => Date.now(),
  projectId: 'proj_sandbox',
  v2RateLimitPerMinute: 480,
  v2ConfigRateLimitPerMinute: 60,
  v2RateLimitWindowMs: 60_000,
  v2PageSize: 20,
  ...DEFAULT_APPLE_OPTIONS,
  appleBundleIds: [...DEFAULT_APPLE_OPTIONS.appleBundleIds],
  appleTransactions: [],
  appleSeedProducts: [...DEFAULT_APPLE_OPTIONS.appleSeedProducts],
  appleFaultCodes: [...DEFAULT_APPLE_OPTIONS.appleFaultCodes],
});

const rate = z.coerce.number().min(0).max(1);
const millis = z.coerce.number().int().min(0);

const flag = z.preprocess((v) => (v === 'false' ? false : v === 'true' ? true : v), z.boolean());
const commaList = (v: unknown): unknown =>
  typeof v === 'string'
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
    : v;
const key = z.string().regex(/^\S+$/, 'a key is one word (no spaces)');

// A CLI passes `--api-keys a,b`; programmatic callers pass an array. `ios=appl_x` belongs in platformApiKeys:
// refused here rather than accepted as a catch-all key spelt with a platform in front.
const apiKeys = z.preprocess(commaList, z.array(key.refine((k) => !isPlatform(k.slice(0, Math.max(0, k.indexOf('=')))), 'a <platform>=<key> pair goes in platformApiKeys')));

const platformApiKeys = z
  .record(z.string(), z.preprocess(commaList, z.array(key).min(1)))
  .superRefine((map, ctx) => {
    for (const platform of Object.keys(map)) {
      if (!isPlatform(platform)) ctx.addIssue({ code: 'custom', path: [platform], message: `not an X-Platform value (${PLATFORMS.join(', ')})` });
    }
  })
  .transform((map) => map as Partial<Record<Platform, string[]>>);

const scheduleStep = z
  .strictObject({
    afterSeconds: z.coerce.number().min(0),
    perSecond: z.coerce.number().int().min(0).optional(),
    perMinute: z.coerce.number().int().min(0).optional(),
  })
  .refine((step) => step.perSecond !== undefined || step.perMinute !== undefined, 'a step sets perSecond and/or perMinute');

// `0:100,40:50,90:100` (per second) or `0:1200/m` (per minute) from a CLI; an array of steps otherwise.
const rateLimitSchedule = z
  .preprocess((v, ctx) => {
    if (typeof v !== 'string') return v;
    const parsed = parseScheduleText(v);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', message: parsed });
      return z.NEVER;
    }
    return parsed;
  }, z.array(scheduleStep))
  .refine((steps) => steps.every((step, i) => i === 0 || step.afterSeconds >= (steps[i - 1]?.afterSeconds ?? 0)), 'steps must be in ascending afterSeconds')
  .transform((steps) =>
    steps.map(({ afterSeconds, perSecond, perMinute }): RateLimitStep => ({
      afterSeconds,
      ...(perSecond === undefined ? {} : { perSecond }),
      ...(perMinute === undefined ? {} : { perMinute }),
    })),
  );

const rateLimitHeaders = z.preprocess((v) => (v === true || v === 'true' ? 'all' : v === false || v === 'false' ? 'none' : v), z.enum(['v2', 'all', 'none']));

/** Every knob optional, unknown keys refused (a typo in a flag should fail, not be ignored). */
export const sandboxOptionsSchema = z.strictObject({
  port: z.coerce.number().int().min(0).max(65535).optional(),
  host: z.string().min(1).optional(),
  apiKeys: apiKeys.optional(),
  platformApiKeys: platformApiKeys.optional(),
  revokedApiKeys: z.preprocess(commaList, z.array(key)).optional(),
  rateLimitPerSecond: z.coerce.number().int().min(0).optional(),
  rateLimitPerMinute: z.coerce.number().int().min(0).optional(),
  rateLimitWindow: z.enum(WINDOW_KINDS).optional(),
  rateLimitSchedule: rateLimitSchedule.optional(),
  rateLimitHeaders: rateLimitHeaders.optional(),
  rateLimitBackoffMs: flag.optional(),
  unlimited: flag.optional(),
  overlapStatus: z.coerce
    .number()
    .pipe(z.union([z.literal(429), z.literal(529)]))
    .optional(),
  latencyMs: millis.optional(),
  latencyJitterMs: millis.optional(),
  fault5xxRate: rate.optional(),
  resetRate: rate.optional(),
  hangRate: rate.optional(),
  hangMs: millis.optional(),
  seed: z.coerce.number().int().optional(),
  now: z.custom<() => number>((v) => typeof v === 'function', 'now must be a function returning epoch milliseconds').optional(),
  projectId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only')
    .optional(),
  v2RateLimitPerMinute: z.coerce.number().int().min(0).optional(),
  v2ConfigRateLimitPerMinute: z.coerce.number().int().min(0).optional(),
  // At most a minute: the limiter keeps one minute of history (for the usage header).
  v2RateLimitWindowMs: z.coerce.number().int().min(100).max(60_000).optional(),
  v2PageSize: z.coerce.number().int().min(1).max(1000).optional(),
  ...appleOptionShape,
});

export class SandboxOptionsError extends Error {
  constructor(
    message: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(message);
    this.name = 'SandboxOptionsError';
  }
}

/** Knobs after parsing: only those given, in their resolved form (rateLimitHeaders as a word). */
export type ParsedSandboxOptions = Partial<ResolvedSandboxOptions>;

/** Validates (and coerces) options; throws SandboxOptionsError naming every bad knob. */
export function parseSandboxOptions(input: unknown): ParsedSandboxOptions {
  const result = sandboxOptionsSchema.safeParse(input ?? {});
  if (result.success) return dropUndefined(result.data as ParsedSandboxOptions);
  const issues = result.error.issues.map((i) => ({ path: i.path.join('.') || '(options)', message: i.message }));
  throw new SandboxOptionsError(`invalid sandbox options: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

export function resolveSandboxOptions(input?: unknown): ResolvedSandboxOptions {
  return {
    ...DEFAULT_SANDBOX_OPTIONS,
    apiKeys: [...DEFAULT_SANDBOX_OPTIONS.apiKeys],
    appleBundleIds: [...DEFAULT_SANDBOX_OPTIONS.appleBundleIds],
    appleSeedProducts: [...DEFAULT_SANDBOX_OPTIONS.appleSeedProducts],
    appleFaultCodes: [...DEFAULT_SANDBOX_OPTIONS.appleFaultCodes],
    ...parseSandboxOptions(input),
  };
}

/** The knobs as JSON (the clock is a function, so it is left out); arrays and maps copied. */
export function publicOptions(options: ResolvedSandboxOptions): Omit<ResolvedSandboxOptions, 'now'> {
  const { now: _now, ...rest } = options;
  return {
    ...rest,
    apiKeys: [...rest.apiKeys],
    platformApiKeys: Object.fromEntries(Object.entries(rest.platformApiKeys).map(([p, keys]) => [p, [...(keys ?? [])]])),
    revokedApiKeys: [...rest.revokedApiKeys],
    rateLimitSchedule: rest.rateLimitSchedule.map((step) => ({ ...step })),
    appleBundleIds: [...rest.appleBundleIds],
    appleTransactions: rest.appleTransactions.map((t) => ({ ...t })),
    appleSeedProducts: [...rest.appleSeedProducts],
    appleFaultCodes: [...rest.appleFaultCodes],
  };
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
