// Configuration is read once at start-up, in three layers (config/default.json, then the environment, then
// flags) and validated as a whole, so that a wrong value stops the process before any row is read or sent.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const configSchema = z.object({
  redisUrl: z
    .string()
    .refine((v) => /^rediss?:\/\//.test(v), 'must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379'),
  /** Key prefix of every Redis key the tool writes (queues, run ledgers): lets several tools or tests share one Redis. */
  prefix: z.string().regex(/^[A-Za-z0-9_{}.-]+$/, 'may hold letters, digits, _ . - { } only (no ":")'),
  apiUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://api.revenuecat.com' }),
  /** Present only for commands that send; checked by `requireApiKey`. Never logged. */
  apiKey: z.string().optional(),
  /** A v2 secret key (`sk_…`) for the verify pass's reads; optional. Never logged. */
  secretKey: z.string().optional(),
  /** The RevenueCat project id of the v2 reads (/v2/projects/{projectId}/…); optional. */
  projectId: z.string().regex(/^[A-Za-z0-9_-]+$/, 'may hold letters, digits, _ and - only (the id in the dashboard URL, e.g. proj1ab2c3d4)').optional(),
  /** The verify pass's reads per minute (v2 Customer Information domain: 480/min per project). */
  verifyRatePerMinute: z.number().positive(),
  /** Users the verify pass reads at once. */
  verifyConcurrency: positiveInt.max(1000),
  requestTimeoutMs: positiveInt,
  connections: positiveInt,
  concurrency: positiveInt.max(1000),
  ratePerSecond: z.number().positive(),
  maxAttempts: positiveInt.max(100),
  backoffBaseMs: positiveInt,
  backoffMaxMs: positiveInt,
  rateLimitDefaultWaitMs: positiveInt,
  userBusyDelayMs: positiveInt,
  userLockMs: positiveInt,
  /** how long a row waits in the worker for its user's request in flight before it goes back to the queue */
  userLockWaitMs: z.number().int().min(0),
  shutdownTimeoutMs: positiveInt,
  /**
   * BullMQ job lock of a row being sent, renewed every half of it while the worker lives. A worker killed with
   * `kill -9` (or a machine that dies) leaves its rows active; they go back to the queue once their lock has
   * expired and a stalled check (every `stalledIntervalMs`) has seen them twice: about lockDurationMs +
   * 2 × stalledIntervalMs. BullMQ's defaults are 30 s each.
   */
  lockDurationMs: positiveInt,
  stalledIntervalMs: positiveInt,
  ingestChunkSize: positiveInt.max(10000),
  /** The ingester pauses while the queue holds more rows than this waiting to be sent (0 = never pauses). */
  highWaterMark: z.number().int().min(0),
  reportDir: z.string().min(1),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
});

export type Config = z.infer<typeof configSchema>;

/** Environment variables and the config keys they set. Numbers are parsed before validation. */
const ENV_KEYS: Record<string, keyof Config> = {
  REDIS_URL: 'redisUrl',
  RC_MIGRATE_PREFIX: 'prefix',
  REVENUECAT_API_URL: 'apiUrl',
  REVENUECAT_API_KEY: 'apiKey',
  REVENUECAT_SECRET_KEY: 'secretKey',
  REVENUECAT_PROJECT_ID: 'projectId',
  RC_MIGRATE_RATE: 'ratePerSecond',
  RC_MIGRATE_CONCURRENCY: 'concurrency',
  RC_MIGRATE_MAX_ATTEMPTS: 'maxAttempts',
  RC_MIGRATE_TIMEOUT_MS: 'requestTimeoutMs',
  RC_MIGRATE_REPORT_DIR: 'reportDir',
  RC_MIGRATE_HIGH_WATER_MARK: 'highWaterMark',
  RC_MIGRATE_LOCK_DURATION_MS: 'lockDurationMs',
  RC_MIGRATE_STALLED_INTERVAL_MS: 'stalledIntervalMs',
  RC_MIGRATE_USER_LOCK_MS: 'userLockMs',
  LOG_LEVEL: 'logLevel',
};

/** Environment variables naming a file that holds a key; they win over the variable holding the key itself. */
const SECRET_FILES: Record<string, keyof Config> = {
  REVENUECAT_API_KEY_FILE: 'apiKey',
  REVENUECAT_SECRET_KEY_FILE: 'secretKey',
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function readDefaults(): Record<string, unknown> {
  const url = new URL('../config/default.json', import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>;
}

const NUMERIC = new Set<keyof Config>(
  Object.entries(configSchema.shape)
    .filter(([, s]) => s instanceof z.ZodNumber)
    .map(([k]) => k as keyof Config),
);

/** "20", "20/s", "1200/min", "72000/h": requests per second. undefined when it is none of those. */
export function parseRate(value: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(s|sec|second|m|min|minute|h|hour))?\s*$/i.exec(value);
  if (!m) return undefined;
  const per = (m[2] ?? 's').toLowerCase()[0];
  return Number(m[1]) / (per === 'h' ? 3600 : per === 'm' ? 60 : 1);
}

function coerce(key: keyof Config, value: unknown): unknown {
  if (key === 'ratePerSecond' && typeof value === 'string') return parseRate(value) ?? value;
  if (typeof value === 'string' && NUMERIC.has(key)) {
    const n = Number(value);
    return value.trim() === '' || Number.isNaN(n) ? value : n;
  }
  return value;
}

export interface LoadConfigInput {
  /** Values from command-line flags; undefined entries are ignored. */
  overrides?: Partial<Record<keyof Config, unknown>>;
  env?: NodeJS.ProcessEnv;
}

/** Layers defaults, environment and flags, validates, and throws ConfigError naming every bad key. */
export function loadConfig({ overrides = {}, env = process.env }: LoadConfigInput = {}): Config {
  const merged: Record<string, unknown> = { ...readDefaults() };
  const origin: Record<string, string> = {};
  for (const key of Object.keys(merged)) origin[key] = 'config/default.json';
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      merged[key] = coerce(key, value);
      origin[key] = `environment variable ${name}`;
    }
  }
  // Keys may come from files (Docker/Kubernetes secrets) rather than the environment: <NAME>_FILE holds a path.
  for (const [name, key] of Object.entries(SECRET_FILES)) {
    const path = env[name];
    if (path === undefined || path === '') continue;
    let value: string;
    try {
      value = readFileSync(path, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`${name}=${path}: cannot read the key file (${(err as NodeJS.ErrnoException).code ?? 'error'}): give the path of a file that holds the key`);
    }
    if (value === '') throw new ConfigError(`${name}=${path}: the key file is empty`);
    merged[key] = value;
    origin[key] = `file named by ${name}`;
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) {
      merged[key] = coerce(key as keyof Config, value);
      origin[key] = `flag for ${key}`;
    }
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '');
      // Never echo the value: it may be a key.
      return `  ${key} (from ${origin[key] ?? 'defaults'}): ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  if (parsed.data.backoffMaxMs < parsed.data.backoffBaseMs) {
    throw new ConfigError('invalid configuration:\n  backoffMaxMs must be at least backoffBaseMs');
  }
  return parsed.data;
}

/** The API key, or a ConfigError that says how to provide one. */
export function requireApiKey(config: Config): string {
  const key = config.apiKey?.trim();
  if (!key) {
    throw new ConfigError(
      'REVENUECAT_API_KEY is not set: export the app\'s public SDK key (appl_…, goog_…, amzn_…, strp_…) or a secret key (sk_…) as REVENUECAT_API_KEY, or put it in a file and set REVENUECAT_API_KEY_FILE to its path',
    );
  }
  if (/\s/.test(key)) throw new ConfigError('REVENUECAT_API_KEY contains whitespace: copy the key again without spaces or newlines');
  return key;
}

const RUN_ID = /^[A-Za-z0-9_.-]{1,64}$/;
export function checkRunId(runId: string): string {
  if (!RUN_ID.test(runId)) {
    throw new ConfigError(`run id "${runId}" is not valid: use 1-64 letters, digits, "_", "." or "-"`);
  }
  return runId;
}

/** A fresh run id that sorts by time: run-20261121-054912-ab12. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `run-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}
