// Configuration layers (defaults < environment < flags) and the messages of bad values.
import { describe, expect, it } from 'vitest';
import { ConfigError, checkRunId, loadConfig, newRunId, requireApiKey } from '../src/config.js';
import { retryDelay, TransientFailure } from '../src/workers/backoff.js';
import { limiterFor } from '../src/workers/rateController.js';

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
