// Configuration layers (defaults < config file < environment < flags) and the messages of bad values.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, checkRunId, loadConfig, newRunId, requireApiKey } from '../src/config.js';
import { s3ClientConfig } from '../src/ingest/s3.js';
import { checkOptions, ingestOptionsRule, runOptionsRule, scheduleSpecRule, serveOptionsRule } from '../src/options.js';
import { retryDelay, TransientFailure } from '../src/workers/backoff.js';
import { limiterFor } from '../src/workers/rate/limiter.js';

describe('loadConfig', () => {
  it('layers defaults, environment and flags in that order', () => {
    const defaults = loadConfig({ env: {} });
    expect(defaults.apiUrl).toBe('https://api.revenuecat.com');
    expect(defaults.apiKey).toBeUndefined();
    const fromEnv = loadConfig({ env: { RC_MIGRATE_RATE: '25', REVENUECAT_API_URL: 'http://127.0.0.1:4010' } });
    expect(fromEnv.ratePerSecond).toBe(25);
    expect(fromEnv.apiUrl).toBe('http://127.0.0.1:4010');
    const fromFlag = loadConfig({ env: { RC_MIGRATE_RATE: '25' }, overrides: { ratePerSecond: '40', concurrency: undefined } });
    expect(fromFlag.ratePerSecond).toBe(40);
    expect(fromFlag.concurrency).toBe(defaults.concurrency);
  });

  it('names every bad key and where it came from, without echoing values', () => {
    let message = '';
    try {
      loadConfig({ env: { REDIS_URL: 'localhost:6379', RC_MIGRATE_CONCURRENCY: '-3' }, overrides: { prefix: 'a:b' } });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/redisUrl \(from environment variable REDIS_URL\): must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(message).toMatch(/concurrency \(from environment variable RC_MIGRATE_CONCURRENCY\)/);
    expect(message).toMatch(/prefix \(from flag for prefix\)/);
    expect(message).not.toContain('localhost:6379');
  });

  it('asks for an API key only where one is needed, and says how to give it', () => {
    expect(() => requireApiKey(loadConfig({ env: {} }))).toThrow(/REVENUECAT_API_KEY is not set/);
    expect(() => requireApiKey(loadConfig({ env: { REVENUECAT_API_KEY: 'appl_x y' } }))).toThrow(/whitespace/);
    expect(requireApiKey(loadConfig({ env: { REVENUECAT_API_KEY: 'appl_abc' } }))).toBe('appl_abc');
  });

  it('accepts run ids that are safe in Redis keys and job ids', () => {
    expect(checkRunId('nightly-2026.11.21_a')).toBe('nightly-2026.11.21_a');
    expect(() => checkRunId('a:b')).toThrow(ConfigError);
    expect(() => checkRunId('')).toThrow(ConfigError);
    expect(newRunId(new Date('2026-11-21T05:49:12Z'))).toMatch(/^run-20261121-054912-[a-z0-9]{1,4}$/);
  });
});

describe('the config file (--config / RC_MIGRATE_CONFIG)', () => {
  let dir: string;
  const file = async (name: string, content: unknown): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rcm-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('sits between the defaults and the environment, and flags win over all', async () => {
    const path = await file('layers.json', { ratePerSecond: '1200/min', concurrency: 4, prefix: 'from-file', maxStarts: 50, s3ForcePathStyle: true });
    const fromFile = loadConfig({ env: { RC_MIGRATE_CONFIG: path } });
    expect(fromFile).toMatchObject({ ratePerSecond: 20, concurrency: 4, prefix: 'from-file', maxStarts: 50, s3ForcePathStyle: true });
    expect(fromFile.apiUrl).toBe('https://api.revenuecat.com'); // not in the file: the default
    const envWins = loadConfig({ env: { RC_MIGRATE_CONFIG: path, RC_MIGRATE_CONCURRENCY: '9' } });
    expect(envWins).toMatchObject({ ratePerSecond: 20, concurrency: 9 });
    const flagWins = loadConfig({ env: { RC_MIGRATE_CONFIG: path, RC_MIGRATE_CONCURRENCY: '9' }, overrides: { concurrency: '11' } });
    expect(flagWins.concurrency).toBe(11);
    // --config wins over RC_MIGRATE_CONFIG.
    const other = await file('other.json', { concurrency: 2 });
    expect(loadConfig({ env: { RC_MIGRATE_CONFIG: path }, configFile: other }).concurrency).toBe(2);
    // No file named anywhere: defaults.
    expect(loadConfig({ env: {} }).concurrency).toBe(16);
  });

  it('refuses an unknown key, naming the key and the file', async () => {
    const path = await file('typo.json', { ratePerSecnd: 20, concurrency: 4 });
    expect(() => loadConfig({ env: {}, configFile: path })).toThrow(ConfigError);
    expect(() => loadConfig({ env: {}, configFile: path })).toThrow(`config file ${path}: unknown key "ratePerSecnd"`);
  });

  it('names the file as where a bad value came from, and says what is wrong with the file itself', async () => {
    const bad = await file('bad.json', { concurrency: -1, apiKey: 'appl_secret_value', redisUrl: 'localhost' });
    let message = '';
    try {
      loadConfig({ env: {}, configFile: bad });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(new RegExp(`concurrency \\(from config file ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`));
    expect(message).toMatch(/redisUrl \(from config file .*\): must be a redis:\/\//);
    expect(message).not.toContain('localhost');
    expect(() => loadConfig({ env: {}, configFile: join(dir, 'missing.json') })).toThrow(/--config .*missing\.json: cannot read the config file \(ENOENT\)/);
    expect(() => loadConfig({ env: { RC_MIGRATE_CONFIG: join(dir, 'missing.json') } })).toThrow(/RC_MIGRATE_CONFIG .*missing\.json: cannot read/);
    const broken = await file('broken.json', '{"concurrency": ');
    expect(() => loadConfig({ env: {}, configFile: broken })).toThrow(/is not valid JSON/);
    const array = await file('array.json', [1, 2]);
    expect(() => loadConfig({ env: {}, configFile: array })).toThrow(/must hold a JSON object/);
  });

  it('holds the tunables that were constants: pacer wait, stall and start limits, expiry tolerance, rate factors', () => {
    expect(loadConfig({ env: {} })).toMatchObject({
      pacerMaxWaitMs: 1000,
      userLockWaitMs: 250,
      poisonStarts: 5,
      maxStarts: 1000,
      expiryToleranceMs: 86_400_000,
      rateStartPerSecond: 5,
      rateFloorPerSecond: 0.2,
      rateGrowth: 1.5,
      rateGrowthStepMs: 1000,
      rateNudge: 0.98,
      rateMaxCut: 0.3,
      rateHeadroom: 0.98,
    });
    expect(() => loadConfig({ env: {}, overrides: { rateNudge: 1.5 } })).toThrow(/rateNudge \(from flag for rateNudge\)/);
    // A poison row needs at least one death to be told from an innocent one; the environment can set it.
    expect(loadConfig({ env: { RC_MIGRATE_POISON_STARTS: '3' } }).poisonStarts).toBe(3);
    expect(() => loadConfig({ env: {}, overrides: { poisonStarts: 0 } })).toThrow(/poisonStarts \(from flag for poisonStarts\)/);
  });

  it('takes maxRetryAfterMs (the longest wait an answer may ask for) between a second and a day, naming the key', () => {
    expect(loadConfig({ env: {} }).maxRetryAfterMs).toBe(120_000);
    expect(loadConfig({ env: {}, overrides: { maxRetryAfterMs: '30000' } }).maxRetryAfterMs).toBe(30_000);
    expect(() => loadConfig({ env: {}, overrides: { maxRetryAfterMs: '500' } })).toThrow(/maxRetryAfterMs \(from flag for maxRetryAfterMs\): must be at least 1000/);
    expect(() => loadConfig({ env: {}, overrides: { maxRetryAfterMs: '99999999999' } })).toThrow(/maxRetryAfterMs .*at most 86400000/);
  });

  it('reads the S3 settings from the environment, validated, into the S3 client configuration', () => {
    const config = loadConfig({ env: { S3_ENDPOINT: 'http://127.0.0.1:9000', S3_FORCE_PATH_STYLE: 'TRUE', AWS_DEFAULT_REGION: 'eu-west-1', AWS_REGION: 'eu-central-1' } });
    expect(config).toMatchObject({ s3Endpoint: 'http://127.0.0.1:9000', s3ForcePathStyle: true, s3Region: 'eu-central-1' });
    expect(s3ClientConfig(config, {})).toMatchObject({ endpoint: 'http://127.0.0.1:9000', forcePathStyle: true, region: 'eu-central-1' });
    expect(loadConfig({ env: { AWS_DEFAULT_REGION: 'eu-west-1', S3_FORCE_PATH_STYLE: '0' } })).toMatchObject({ s3Region: 'eu-west-1', s3ForcePathStyle: false });
    expect(() => loadConfig({ env: { S3_FORCE_PATH_STYLE: 'yes please' } })).toThrow(
      /s3ForcePathStyle \(from environment variable S3_FORCE_PATH_STYLE\): must be true, 1, false or 0/,
    );
    expect(() => loadConfig({ env: { S3_ENDPOINT: 'ftp://host' } })).toThrow(/s3Endpoint \(from environment variable S3_ENDPOINT\)/);
  });
});

describe('option rules of the library functions (src/options.ts)', () => {
  const run = (opts: Record<string, unknown>): unknown => checkOptions(runOptionsRule, { sources: ['a.csv'], ...opts }, 'runMigration');

  it('takes the --map targets ingest/columns.ts takes: a field in any case, platform, a $attribute', () => {
    expect(() => run({ columns: { map: { email: '$email', receipt: 'Fetch_Token', store: 'PLATFORM' } } })).not.toThrow();
    expect(() => run({ columns: { map: { receipt: 'receipt_data' } } })).toThrow(/--map receipt=receipt_data: "receipt_data" is not a field; use one of app_user_id/);
    expect(() => run({ columns: { map: { receipt: 'receipt_data' } } })).toThrow(ConfigError);
    expect(() => run({ columns: { platform: 'windows' } })).toThrow(/platform "windows" is not one of ios, android/);
  });

  it('checks run ids, sources and ports, and reports every problem at once', () => {
    expect(() => run({ runId: 'nightly-2026.11.21_a', metricsPort: 0 })).not.toThrow();
    let message = '';
    try {
      checkOptions(ingestOptionsRule, { sources: [], runId: 'a:b' }, 'ingestSources');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/no source given/);
    expect(message).toMatch(/run id "a:b" is not valid/);
    expect(() => run({ sources: ['s3:/bucket'] })).toThrow(/source s3:\/bucket is not a valid S3 URL/);
    expect(() => checkOptions(serveOptionsRule, { port: 70000 }, 'serveMonitor')).toThrow(/port 70000 is not a port number/);
    expect(() => checkOptions(serveOptionsRule, { port: Number('x') }, 'serveMonitor')).toThrow(/port not a number is not a port number/);
    // A wrong type from a library caller names the function and the option.
    expect(() => run({ force: 'yes' })).toThrow(/runMigration: force: /);
  });

  it('checks schedules: id, cron pattern (as BullMQ parses it), time zone, days ago, sources', () => {
    const spec = { id: 'nightly', cron: '0 3 * * *', tz: 'Europe/Berlin', sources: ['s3://b/{date}/'], daysAgo: 1 };
    expect(() => checkOptions(scheduleSpecRule, spec, 'addSchedule')).not.toThrow();
    expect(() => checkOptions(scheduleSpecRule, { ...spec, cron: '*/2 * * * * *' }, 'addSchedule')).not.toThrow();
    expect(() => checkOptions(scheduleSpecRule, { ...spec, cron: 'every night' }, 'addSchedule')).toThrow(/--cron "every night" was not accepted/);
    expect(() => checkOptions(scheduleSpecRule, { ...spec, cron: '61 * * * *' }, 'addSchedule')).toThrow(/was not accepted/);
    expect(() => checkOptions(scheduleSpecRule, { ...spec, tz: 'Mars/Olympus' }, 'addSchedule')).toThrow(/Mars\/Olympus is not a time zone/);
    expect(() => checkOptions(scheduleSpecRule, { ...spec, id: 'a b' }, 'addSchedule')).toThrow(/schedule id "a b" is not valid/);
    expect(() => checkOptions(scheduleSpecRule, { ...spec, daysAgo: -1 }, 'addSchedule')).toThrow(/--days-ago -1: give a whole number/);
    expect(() => checkOptions(scheduleSpecRule, { ...spec, sources: [] }, 'addSchedule')).toThrow(/at least one source/);
  });
});

describe('retry timing', () => {
  it('grows exponentially with jitter, capped, and never undercuts what the API asked for', () => {
    const s = { baseMs: 100, maxMs: 1000 };
    expect(retryDelay(1, new Error('x'), { ...s, random: () => 0 })).toBe(50);
    expect(retryDelay(1, new Error('x'), { ...s, random: () => 1 })).toBe(100);
    expect(retryDelay(3, new Error('x'), { ...s, random: () => 1 })).toBe(400);
    expect(retryDelay(10, new Error('x'), { ...s, random: () => 1 })).toBe(1000);
    expect(retryDelay(1, new TransientFailure('busy', 5000), { ...s, random: () => 1 })).toBe(5000);
  });

  it('turns a request rate into BullMQ limiter windows', () => {
    // Short windows rounded up, so the cap never ends up above the rate.
    expect(limiterFor(100)).toEqual({ max: 2, duration: 20 });
    expect(limiterFor(0.5)).toEqual({ max: 1, duration: 2000 });
    for (const rate of [0.5, 3, 20, 97, 100, 250, 1000, 5000]) {
      const { max, duration } = limiterFor(rate);
      expect(duration).toBeGreaterThanOrEqual(20);
      expect((max * 1000) / duration).toBeLessThanOrEqual(rate);
      expect((max * 1000) / duration).toBeGreaterThanOrEqual(rate * 0.99);
      // Any second, even stretched by 10 ms of jitter, holds at most the full rate.
      expect(Math.ceil(1010 / duration) * max).toBeLessThanOrEqual(Math.ceil(rate * 1.0001) + max);
    }
  });
});
