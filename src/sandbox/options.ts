// The sandbox's knobs. One strict schema serves three callers: startSandbox(), configure() / POST
// /_sandbox/config, and a CLI whose flags arrive as strings (hence the coercions and the comma list).
import { z } from 'zod';

export interface SandboxOptions {
  /** 0 = any free port. */
  port?: number;
  host?: string;
  /** Accepted Bearer keys. A key starting with `sk_` is treated as secret (subscriber_attributes shown). */
  apiKeys?: string[];
  /** 0 = unlimited. Sliding 1-second window over POST /v1/receipts and GET /v1/subscribers. */
  rateLimitPerSecond?: number;
  /** Send RevenueCat-Rate-Limit-Current-Limit/-Usage headers when a limit is set (v2 does; v1 may not). */
  rateLimitHeaders?: boolean;
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

export type ResolvedSandboxOptions = Required<SandboxOptions>;

export const DEFAULT_SANDBOX_OPTIONS: Readonly<ResolvedSandboxOptions> = Object.freeze({
  port: 0,
  host: '127.0.0.1',
  apiKeys: ['appl_sandbox_key'],
  rateLimitPerSecond: 0,
  rateLimitHeaders: true,
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
});

const rate = z.coerce.number().min(0).max(1);
const millis = z.coerce.number().int().min(0);

// A CLI passes `--api-keys a,b`; programmatic callers pass an array.
const apiKeys = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : v),
  z.array(z.string().min(1)),
);

/** Every knob optional, unknown keys refused (a typo in a flag should fail, not be ignored). */
export const sandboxOptionsSchema = z.strictObject({
  port: z.coerce.number().int().min(0).max(65535).optional(),
  host: z.string().min(1).optional(),
  apiKeys: apiKeys.optional(),
  rateLimitPerSecond: z.coerce.number().int().min(0).optional(),
  rateLimitHeaders: z.preprocess((v) => (v === 'false' ? false : v === 'true' ? true : v), z.boolean()).optional(),
  latencyMs: millis.optional(),
  latencyJitterMs: millis.optional(),
  fault5xxRate: rate.optional(),
  resetRate: rate.optional(),
  hangRate: rate.optional(),
  hangMs: millis.optional(),
  seed: z.coerce.number().int().optional(),
  now: z.custom<() => number>((v) => typeof v === 'function', 'now must be a function returning epoch milliseconds').optional(),
  projectId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only').optional(),
  v2RateLimitPerMinute: z.coerce.number().int().min(0).optional(),
  v2ConfigRateLimitPerMinute: z.coerce.number().int().min(0).optional(),
  // At most a minute: the limiter keeps one minute of history (for the usage header).
  v2RateLimitWindowMs: z.coerce.number().int().min(100).max(60_000).optional(),
  v2PageSize: z.coerce.number().int().min(1).max(1000).optional(),
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

/** Validates (and coerces) options; throws SandboxOptionsError naming every bad knob. */
export function parseSandboxOptions(input: unknown): SandboxOptions {
  const result = sandboxOptionsSchema.safeParse(input ?? {});
  if (result.success) return dropUndefined(result.data as SandboxOptions);
  const issues = result.error.issues.map((i) => ({ path: i.path.join('.') || '(options)', message: i.message }));
  throw new SandboxOptionsError(`invalid sandbox options: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

export function resolveSandboxOptions(input?: unknown): ResolvedSandboxOptions {
  return { ...DEFAULT_SANDBOX_OPTIONS, apiKeys: [...DEFAULT_SANDBOX_OPTIONS.apiKeys], ...parseSandboxOptions(input) };
}

/** The knobs as JSON (the clock is a function, so it is left out). */
export function publicOptions(options: ResolvedSandboxOptions): Omit<ResolvedSandboxOptions, 'now'> {
  const { now: _now, ...rest } = options;
  return { ...rest, apiKeys: [...rest.apiKeys] };
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
