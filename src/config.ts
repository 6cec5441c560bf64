// Configuration is read once at start-up, in four layers (config/default.json, then the user's config file
// named by --config or RC_MIGRATE_CONFIG, then the environment, then flags) and validated as a whole, so that
// a wrong value stops the process before any row is read or sent.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const positiveInt = z.number().int().positive();
/** A share of something, strictly between 0 and 1 (a factor that lowers a rate). */
const fraction = z.number().gt(0).lt(1);

export const configSchema = z.object({
  redisUrl: z.string().refine((v) => /^rediss?:\/\//.test(v), 'must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379'),
  /**
   * Seed nodes of a Redis Cluster ("host:port,host:port,…", or redis:// / rediss:// URLs): when set, every
   * connection is a cluster connection, and redisUrl only lends its user, password and TLS (src/redis/connection.ts).
   */
  redisClusterNodes: z
    .string()
    .regex(/^\s*[^\s,]+(\s*,\s*[^\s,]+)*\s*,?\s*$/, 'must list seed nodes as host:port,host:port,… (or redis:// / rediss:// URLs)')
    .optional(),
  /** Key prefix of every Redis key the tool writes (queues, run ledgers): lets several tools or tests share one Redis. */
  prefix: z.string().regex(/^[A-Za-z0-9_{}.-]+$/, 'may hold letters, digits, _ . - { } only (no ":")'),
  apiUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://api.revenuecat.com' }),
  /** Present only for commands that send; checked by `requireApiKey`. Never logged. */
  apiKey: z.string().optional(),
  /** One key per platform's app (REVENUECAT_API_KEY_<PLATFORM>, PLATFORM_API_KEYS); `apiKey` serves the platforms without one. Never logged. */
  apiKeyIos: z.string().optional(),
  apiKeyAndroid: z.string().optional(),
  apiKeyAmazon: z.string().optional(),
  apiKeyStripe: z.string().optional(),
  apiKeyMacos: z.string().optional(),
  apiKeyUikitformac: z.string().optional(),
  apiKeyRoku: z.string().optional(),
  apiKeyPaddle: z.string().optional(),
  /** Whether all keys of a run share one learned rate limit ('run') or each key has its own ('key'). */
  rateLimitScope: z.enum(['run', 'key']),
  /** A v2 secret key (`sk_…`) for the verify pass's reads; optional. Never logged. */
  secretKey: z.string().optional(),
  /** The RevenueCat project id of the v2 reads (/v2/projects/{projectId}/…); optional. */
  projectId: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'may hold letters, digits, _ and - only (the id in the dashboard URL, e.g. proj1ab2c3d4)')
    .optional(),
  /** The verify pass's reads per minute (v2 Customer Information domain: 480/min per project). */
  verifyRatePerMinute: z.number().positive(),
  /** Users the verify pass reads at once. */
  verifyConcurrency: positiveInt.max(1000),
  requestTimeoutMs: positiveInt,
  connections: positiveInt,
  concurrency: positiveInt.max(1000),
  /** --rate: the ceiling on the request rate (and where it starts); absent = discover the API's limit (workers/rateController.ts). */
  ratePerSecond: z.number().positive().optional(),
  maxAttempts: positiveInt.max(100),
  backoffBaseMs: positiveInt,
  backoffMaxMs: positiveInt,
  rateLimitDefaultWaitMs: positiveInt,
  /**
   * The longest wait an answer may ask for (Retry-After, backoff_ms). A Retry-After over 10 minutes is read as
   * milliseconds when that is within this (RevenueCat's older reference), else capped here (revenuecat/retryAfter.ts).
   * At least a second (a 429's least wait), at most a day.
   */
  maxRetryAfterMs: z.number().int().min(1000, 'must be at least 1000 (ms): a 429 asks for at least a second').max(86_400_000, 'must be at most 86400000 (a day)'),
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
  /**
   * A row whose request was in flight when this many worker processes died (or hung) fails as poison_row
   * (workers/inFlightRows.ts). A worker that dies while a row waits costs that row nothing.
   */
  poisonStarts: positiveInt.max(100),
  /** How many times a row may be started (rate-limited or its user busy) before it fails as too_many_starts. */
  maxStarts: positiveInt,
  /** Longest a request waits in the worker for its slot of the pacer's schedule before going back to the queue. */
  pacerMaxWaitMs: positiveInt,
  /** Rate discovery (workers/rate/discovery.ts): the first rate when nothing is known and no --rate is given. */
  rateStartPerSecond: z.number().positive(),
  /** The rate is never lowered below this (requests per second). */
  rateFloorPerSecond: z.number().positive(),
  /** Slow start: the rate is multiplied by this after each `rateGrowthStepMs` without a 429. */
  rateGrowth: z.number().gt(1),
  rateGrowthStepMs: positiveInt,
  /** A lone 429 at a rate that was fine multiplies the rate by this (jitter at the window's edge). */
  rateNudge: fraction,
  /** Largest cut for 429s that measure nothing (a share of the rate). */
  rateMaxCut: fraction,
  /** Share of the rate the pacer spaces requests for, so that a few ms of jitter never exceed the limit. */
  rateHeadroom: z.number().gt(0).max(1),
  /** How much earlier than expected an expiry may be before it is a mismatch (expected_expires_at, verify). */
  expiryToleranceMs: z.number().int().min(0),
  /** S3 sources: endpoint of an S3-compatible store (absent = AWS). */
  s3Endpoint: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. http://127.0.0.1:9000 (unset it for AWS)' }).optional(),
  /** S3 sources: path-style addressing (http://host/bucket/key), which S3-compatible stores often need. */
  s3ForcePathStyle: z.boolean({ error: 'must be true, 1, false or 0' }).optional(),
  /** S3 sources: the region (absent = the AWS profile's region, else us-east-1). */
  s3Region: z
    .string()
    .regex(/^[a-z0-9-]+$/, 'must be a region name such as eu-west-1')
    .optional(),
  ingestChunkSize: positiveInt.max(10000),
  /** The ingester pauses while the queue holds more rows than this waiting to be sent (0 = never pauses). */
  highWaterMark: z.number().int().min(0),
  reportDir: z.string().min(1),
  /** Text encoding of input files without a byte order mark (ingest/textEncoding.ts; latin1 is read as windows-1252). */
  inputEncoding: z.enum(['utf8', 'latin1', 'windows-1252', 'utf16le']),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  /** App Store apps (bundle ids) of the run: receipts are checked against them; transaction ids are looked up in them (--bundle-id). */
  appleBundleIds: z.array(z.string().regex(/^[A-Za-z0-9.-]+$/, 'must be bundle ids such as com.example.app')).optional(),
  /** Reject App Store receipts of Apple's sandbox and of Xcode's StoreKit testing at ingest (--skip-sandbox); default: sent and counted. */
  skipSandbox: z.boolean().optional(),
  /**
   * Bench and diagnosis only (RC_MIGRATE_READ_RECEIPTS=0): false makes ingest and plan take App Store tokens as
   * opaque strings, as before receipts were read: no survey pass, nothing superseded, no conflicts by purchase,
   * no --bundle-id or --skip-sandbox check. bench/scenarios/ingestReceipts.mjs compares the two. Default true.
   */
  readAppleReceipts: z.boolean({ error: 'must be true, 1, false or 0' }),
  /**
   * Bench and diagnosis only (RC_MIGRATE_SURVEY_THREAD=0): false makes the survey pass read App Store tokens in
   * its own thread, not in a worker thread beside it (ingest/surveyThread.ts). Default true.
   */
  surveyThread: z.boolean({ error: 'must be true, 1, false or 0' }),
  /** App Store Server API lookups per second, across all workers (Apple: 50/s per app in production). */
  appleRate: z.number().positive(),
  /** One base URL for every App Store Server API lookup instead of Apple's production then sandbox (APP_STORE_SERVER_API_URL). */
  appStoreApiUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://api.storekit.apple.com' }).optional(),
  /** The App Store Connect API key of the lookups (APPLE_ISSUER_ID, APPLE_KEY_ID, APPLE_PRIVATE_KEY[_FILE]). Never logged. */
  appleIssuerId: z.string().optional(),
  appleKeyId: z.string().optional(),
  applePrivateKey: z.string().optional(),
});

export type Config = z.infer<typeof configSchema>;

/**
 * The API key of each platform's app: config key, and the environment variable REVENUECAT_API_KEY_<PLATFORM>
 * (with a <NAME>_FILE variant). Platforms are X-Platform values (revenuecat/fields.ts; keyRing.ts checks the list).
 */
export const PLATFORM_API_KEYS = {
  ios: 'apiKeyIos',
  android: 'apiKeyAndroid',
  amazon: 'apiKeyAmazon',
  stripe: 'apiKeyStripe',
  macos: 'apiKeyMacos',
  uikitformac: 'apiKeyUikitformac',
  roku: 'apiKeyRoku',
  paddle: 'apiKeyPaddle',
} as const satisfies Record<string, keyof Config>;

/** The environment variable of a platform's key, e.g. REVENUECAT_API_KEY_ANDROID. */
export function platformKeyVariable(platform: string): string {
  return `REVENUECAT_API_KEY_${platform.toUpperCase()}`;
}

const PLATFORM_KEY_ENV = Object.fromEntries(Object.entries(PLATFORM_API_KEYS).map(([platform, key]) => [platformKeyVariable(platform), key])) as Record<string, keyof Config>;

/** Environment variables and the config keys they set. Numbers are parsed before validation. */
const ENV_KEYS: Record<string, keyof Config> = {
  ...PLATFORM_KEY_ENV,
  RC_MIGRATE_RATE_LIMIT_SCOPE: 'rateLimitScope',
  REDIS_URL: 'redisUrl',
  REDIS_CLUSTER_NODES: 'redisClusterNodes',
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
  RC_MIGRATE_ENCODING: 'inputEncoding',
  RC_MIGRATE_HIGH_WATER_MARK: 'highWaterMark',
  RC_MIGRATE_LOCK_DURATION_MS: 'lockDurationMs',
  RC_MIGRATE_STALLED_INTERVAL_MS: 'stalledIntervalMs',
  RC_MIGRATE_USER_LOCK_MS: 'userLockMs',
  RC_MIGRATE_POISON_STARTS: 'poisonStarts',
  LOG_LEVEL: 'logLevel',
  APP_STORE_SERVER_API_URL: 'appStoreApiUrl',
  RC_MIGRATE_APPLE_RATE: 'appleRate',
  RC_MIGRATE_READ_RECEIPTS: 'readAppleReceipts',
  RC_MIGRATE_SURVEY_THREAD: 'surveyThread',
  APPLE_ISSUER_ID: 'appleIssuerId',
  APPLE_KEY_ID: 'appleKeyId',
  APPLE_PRIVATE_KEY: 'applePrivateKey',
  S3_ENDPOINT: 's3Endpoint',
  S3_FORCE_PATH_STYLE: 's3ForcePathStyle',
  // AWS_REGION wins over AWS_DEFAULT_REGION (the AWS SDK's order): later entries override earlier ones.
  AWS_DEFAULT_REGION: 's3Region',
  AWS_REGION: 's3Region',
};

/** The environment variable naming the user's config file (the --config flag wins over it). */
export const CONFIG_FILE_ENV = 'RC_MIGRATE_CONFIG';

/** Environment variables naming a file that holds a key; they win over the variable holding the key itself. */
const SECRET_FILES: Record<string, keyof Config> = {
  REVENUECAT_API_KEY_FILE: 'apiKey',
  REVENUECAT_SECRET_KEY_FILE: 'secretKey',
  APPLE_PRIVATE_KEY_FILE: 'applePrivateKey',
  ...Object.fromEntries(Object.entries(PLATFORM_KEY_ENV).map(([name, key]) => [`${name}_FILE`, key])),
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function readDefaults(): Record<string, unknown> {
  const url = new URL('../config/default.json', import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>;
}

/** The schema of a key without its optional wrapper: what a string from the environment is parsed into. */
function baseOf(schema: z.ZodType): z.ZodType {
  return schema instanceof z.ZodOptional ? baseOf(schema.unwrap() as z.ZodType) : schema;
}

const KINDS = Object.fromEntries(Object.entries(configSchema.shape).map(([k, s]) => [k, baseOf(s as z.ZodType)])) as Record<keyof Config, z.ZodType>;

/** "20", "20/s", "1200/min", "72000/h": requests per second. undefined when it is none of those. */
export function parseRate(value: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(s|sec|second|m|min|minute|h|hour))?\s*$/i.exec(value);
  if (!m) return undefined;
  const per = (m[2] ?? 's').toLowerCase()[0];
  return Number(m[1]) / (per === 'h' ? 3600 : per === 'm' ? 60 : 1);
}

/** Strings (from the environment, flags or a file) become the number or boolean their key holds. */
function coerce(key: keyof Config, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (key === 'ratePerSecond' || key === 'appleRate') return parseRate(value) ?? value;
  // --bundle-id, repeatable, or a comma-separated list from the environment or a flag
  if (key === 'appleBundleIds')
    return value
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v !== '');
  const kind = KINDS[key];
  if (kind instanceof z.ZodNumber) {
    const n = Number(value);
    return value.trim() === '' || Number.isNaN(n) ? value : n;
  }
  if (kind instanceof z.ZodBoolean) {
    const v = value.trim().toLowerCase();
    return v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : value;
  }
  return value;
}

/**
 * The user's config file: a JSON object of config keys. An unknown key is an error (a typo would otherwise be
 * ignored silently and the default used), named with the file.
 */
function readConfigFile(path: string, via: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${via} ${path}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? 'error'}): give the path of a JSON file`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a JSON object of settings, e.g. {"ratePerSecond": 20}`);
  }
  const known = new Set(Object.keys(configSchema.shape));
  const unknown = Object.keys(parsed).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new ConfigError(
      `config file ${path}: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (the keys are those of docs/configuration.md, e.g. ratePerSecond, redisUrl)`,
    );
  }
  return parsed as Record<string, unknown>;
}

export interface LoadConfigInput {
  /** Values from command-line flags; undefined entries are ignored. */
  overrides?: Partial<Record<keyof Config, unknown>>;
  env?: NodeJS.ProcessEnv;
  /** The user's config file (--config); default: the file named by RC_MIGRATE_CONFIG in `env`, if any. */
  configFile?: string;
}

/** Layers defaults, the config file, environment and flags, validates, and throws ConfigError naming every bad key. */
export function loadConfig({ overrides = {}, env = process.env, configFile }: LoadConfigInput = {}): Config {
  const merged: Record<string, unknown> = { ...readDefaults() };
  const origin: Record<string, string> = {};
  for (const key of Object.keys(merged)) origin[key] = 'config/default.json';
  const fromEnv = env[CONFIG_FILE_ENV];
  const file = configFile !== undefined && configFile !== '' ? { path: configFile, via: '--config' } : fromEnv ? { path: fromEnv, via: CONFIG_FILE_ENV } : undefined;
  if (file) {
    for (const [key, value] of Object.entries(readConfigFile(file.path, file.via))) {
      merged[key] = coerce(key as keyof Config, value);
      origin[key] = `config file ${file.path}`;
    }
  }
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
      "REVENUECAT_API_KEY is not set: export the app's public SDK key (appl_…, goog_…, amzn_…, strp_…) or a secret key (sk_…) as REVENUECAT_API_KEY, or put it in a file and set REVENUECAT_API_KEY_FILE to its path",
    );
  }
  if (/\s/.test(key)) throw new ConfigError('REVENUECAT_API_KEY contains whitespace: copy the key again without spaces or newlines');
  return key;
}

const RUN_ID = /^[A-Za-z0-9_.-]{1,64}$/;
/** A run id is part of Redis key names and job ids: letters, digits, "_", "." and "-" (options.ts uses this rule). */
export const runIdRule = z.string().refine((v) => RUN_ID.test(v), { error: (iss) => `run id "${String(iss.input)}" is not valid: use 1-64 letters, digits, "_", "." or "-"` });

export function checkRunId(runId: string): string {
  const parsed = runIdRule.safeParse(runId);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => i.message).join('; '));
  return parsed.data;
}

/** A fresh run id that sorts by time: run-20261121-054912-ab12. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `run-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}
