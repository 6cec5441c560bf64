// The limit scope (config rateLimitScope, issue 9), through the whole pipeline (real Redis, the sandbox over
// HTTP with a key per platform): 'key' gives each key a learned rate of its own in Redis, 'run' (the default) one
// for every key; and the session's progress carries the learned rate the bar and the progress line show.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runMigration } from '../src/commands/run.js';
import { silentLogger } from '../src/logger.js';
import { openRedis } from '../src/redis/connection.js';
import { DEFAULT_RATE_SCOPE, RedisKeys } from '../src/redis/keys.js';
import { keyFingerprint, keyLabel } from '../src/revenuecat/keyRing.js';
import { keyLabel as sandboxLabel } from '../src/sandbox/index.js';
import { briefRate, type RunProgress } from '../src/session/rateProgress.js';
import { readRateState } from '../src/workers/rate/sharedRate.js';
import { pipelineFixture } from './support/fixture.js';
import { redisUrl } from './support/redis.js';
import { testConfig, token, writeCsv } from './support/harness.js';

const IOS = 'appl_ScopeIosKey0123456789abcdef';
const ANDROID = 'goog_ScopeAndroidKey0123456789ab';
const HEADER = ['platform', 'app_user_id', 'fetch_token', 'product_id'];

function rows(platform: 'ios' | 'android', n: number): string[][] {
  return Array.from({ length: n }, (_, i) => [platform, `${platform}-scope-${i}`, token(i + (platform === 'ios' ? 0 : 100_000)), platform === 'ios' ? '' : 'gold']);
}

describe('rate limit scope', () => {
  const fx = pipelineFixture('ratescope', { platformApiKeys: { ios: [IOS], android: [ANDROID] }, latencyMs: 2 });
  const keyScope = (key: string): string => `key-${keyFingerprint(key)}`;

  /** Runs 40 rows of each platform, discovering the rate from a slow start; the scopes' views and the progress seen. */
  async function run(scope: 'run' | 'key', runId: string) {
    const p = fx.newPrefix(runId);
    const source = await writeCsv(fx.dir, `${runId}.csv`, HEADER, [...rows('ios', 40), ...rows('android', 40)]);
    // No --rate: discovered, from a start slow enough that the run lasts past a progress tick (one a second).
    const config = testConfig(p, fx.sandbox.url, {
      apiKey: undefined,
      apiKeyIos: IOS,
      apiKeyAndroid: ANDROID,
      ratePerSecond: undefined,
      rateStartPerSecond: 10,
      rateLimitScope: scope,
    });
    const progress: RunProgress[] = [];
    const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId, outDir: join(fx.dir, runId), on: { progress: (s) => progress.push(s) } });
    expect(result.summary.rows_succeeded).toBe(80);
    const redis = openRedis(redisUrl());
    try {
      const keys = new RedisKeys(p);
      const [run, ios, android] = await Promise.all([DEFAULT_RATE_SCOPE, keyScope(IOS), keyScope(ANDROID)].map((s) => readRateState(redis, keys, s)));
      return { run, ios, android, progress };
    } finally {
      redis.disconnect();
    }
  }

  it("'key': each key learns a rate of its own in Redis, and the progress shows their sum", async () => {
    fx.sandbox.reset();
    const { run: shared, ios, android, progress } = await run('key', 'perkey');
    // Both keys sent their rows with their own key (a mix-up would be a 401 from the sandbox).
    expect(fx.sandbox.stats().byKey[sandboxLabel(IOS)]).toMatchObject({ accepted: 40, unauthorized: 0 });
    expect(fx.sandbox.stats().byKey[sandboxLabel(ANDROID)]).toMatchObject({ accepted: 40, unauthorized: 0 });
    expect(shared).toBeUndefined();
    expect(ios).toMatchObject({ scope: keyScope(IOS) });
    expect(android).toMatchObject({ scope: keyScope(ANDROID) });
    // Each climbed from the start on its own (nothing refused them).
    expect(ios!.rate).toBeGreaterThan(10);
    expect(android!.rate).toBeGreaterThan(10);
    // The scope names a key by its fingerprint, never the key.
    expect(keyScope(IOS)).not.toContain(IOS);
    expect(keyScope(IOS)).not.toContain(keyLabel(IOS).replace('…', ''));
    const withRates = progress.filter((s) => s.rates !== undefined);
    expect(withRates.length).toBeGreaterThan(0);
    const last = withRates.at(-1)!;
    expect(last.rates!.map((v) => v.scope).sort()).toEqual([keyScope(IOS), keyScope(ANDROID)].sort());
    expect(briefRate(last.rates)).toMatch(/^\d+\.\d+\/s (discovering|learned), 2 keys$/);
  });

  it("'run' (the default): one rate for every key, and the progress shows it", async () => {
    fx.sandbox.reset();
    const { run: shared, ios, android, progress } = await run('run', 'perrun');
    expect(shared).toMatchObject({ scope: DEFAULT_RATE_SCOPE });
    expect(shared!.rate).toBeGreaterThan(10);
    expect(ios).toBeUndefined();
    expect(android).toBeUndefined();
    const withRates = progress.filter((s) => s.rates !== undefined);
    expect(withRates.length).toBeGreaterThan(0);
    expect(withRates.at(-1)!.rates!.map((v) => v.scope)).toEqual([DEFAULT_RATE_SCOPE]);
    expect(briefRate(withRates.at(-1)!.rates)).toMatch(/^\d+\.\d+\/s (discovering|learned)$/);
  });
});
