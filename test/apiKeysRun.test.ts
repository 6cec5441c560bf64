// Keys per app, through the whole pipeline (real Redis, the sandbox over HTTP, which binds keys to platforms and
// counts requests per key): each platform's rows go out with its own key; a row whose platform has no key is
// rejected at ingest naming the variable; a revoked key stops only its platform's rows while the others finish,
// the same key run again sends nothing, and a new key sends the rest without sending anything twice; a Google
// token past its cut-off fails as google_token_expired.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runMigration } from '../src/commands/run.js';
import { silentLogger } from '../src/logger.js';
import { openReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { openRedis } from '../src/redis/connection.js';
import { keyLabel as sandboxLabel, startSandbox, type Sandbox, type SandboxOptions } from '../src/sandbox/index.js';
import { pipelineFixture } from './support/fixture.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { redisUrl } from './support/redis.js';

const IOS = 'appl_IosKey0123456789abcdef';
const ANDROID = 'goog_AndroidKey0123456789abcdef';
const ANDROID_NEW = 'goog_NewAndroidKey0123456789abc';
const PROJECT = 'sk_ProjectKey0123456789abcdef';
const HEADER = ['platform', 'app_user_id', 'fetch_token', 'product_id', 'store_user_id'];

/** `n` rows of a platform, users and tokens of their own. */
function rows(platform: string, n: number, from = 0): string[][] {
  return Array.from({ length: n }, (_, i) => [
    platform,
    `${platform}-user-${from + i}`,
    token(from + i + (platform === 'ios' ? 0 : platform === 'android' ? 100_000 : 200_000)),
    platform === 'ios' ? '' : 'gold',
    platform === 'amazon' ? 'amzn-store-user' : '',
  ]);
}

async function withSandbox<T>(options: SandboxOptions, fn: (sb: Sandbox) => Promise<T>): Promise<T> {
  const sb = await startSandbox({ latencyMs: 2, ...options });
  try {
    return await fn(sb);
  } finally {
    await sb.close();
  }
}

async function admin(sb: Sandbox, path: string, body: unknown): Promise<number> {
  const res = await fetch(`${sb.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res.status;
}

describe('keys per app through the pipeline', () => {
  const fx = pipelineFixture('apikeys');

  it("routes each platform's rows to its own key, and the rest to REVENUECAT_API_KEY", async () => {
    await withSandbox({ apiKeys: [PROJECT], platformApiKeys: { ios: [IOS], android: [ANDROID] } }, async (sb) => {
      const source = await writeCsv(fx.dir, 'route.csv', HEADER, [...rows('ios', 30), ...rows('android', 20), ...rows('amazon', 10)]);
      const config = testConfig(fx.newPrefix('route'), sb.url, { apiKey: PROJECT, apiKeyIos: IOS, apiKeyAndroid: ANDROID, concurrency: 4 });
      const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'route', outDir: join(fx.dir, 'route') });
      expect(result.exitCode).toBe(0);
      expect(result.summary.rows_succeeded).toBe(60);
      const byKey = sb.stats().byKey;
      // The sandbox refuses a platform key for another platform's rows: any mix-up would show as 401s.
      expect(byKey[sandboxLabel(IOS)]).toMatchObject({ platforms: ['ios'], requests: 30, accepted: 30, unauthorized: 0 });
      expect(byKey[sandboxLabel(ANDROID)]).toMatchObject({ platforms: ['android'], requests: 20, accepted: 20, unauthorized: 0 });
      expect(byKey[sandboxLabel(PROJECT)]).toMatchObject({ platforms: ['*'], requests: 10, accepted: 10, unauthorized: 0 });
    });
  });

  it('rejects at ingest the rows of a platform without a key, naming the variable, and sends the others', async () => {
    await withSandbox({ platformApiKeys: { ios: [IOS] } }, async (sb) => {
      const source = await writeCsv(fx.dir, 'missing.csv', HEADER, [...rows('ios', 10), ...rows('android', 5)]);
      const config = testConfig(fx.newPrefix('missing'), sb.url, { apiKey: undefined, apiKeyIos: IOS, concurrency: 4 });
      const out = join(fx.dir, 'missing');
      const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'missing', outDir: out });
      expect(result.exitCode).toBe(1);
      expect(result.summary.status).toBe('complete');
      expect(result.summary.fatal).toBeUndefined();
      expect(result.summary).toMatchObject({ rows_read: 15, rows_queued: 10, rows_succeeded: 10, rows_rejected: 5 });
      const rejected = await readCsvFile(join(out, 'rejected.csv'));
      expect(rejected).toHaveLength(5);
      for (const r of rejected) expect(r.error_reason).toBe('no API key for android: set REVENUECAT_API_KEY_ANDROID or REVENUECAT_API_KEY');
      // Nothing was sent for them.
      expect(sb.stats().byStatus['401'] ?? 0).toBe(0);
    });
  });

  it('a revoked key stops only its platform; the same key sends nothing more; a new key sends the rest once', async () => {
    await withSandbox({ apiKeys: [], platformApiKeys: { ios: [IOS], android: [ANDROID, ANDROID_NEW] } }, async (sb) => {
      const prefix = fx.newPrefix('revoked');
      const IOS_ROWS = 120;
      const ANDROID_ROWS = 80;
      const source = await writeCsv(fx.dir, 'revoked.csv', HEADER, [...rows('ios', IOS_ROWS), ...rows('android', ANDROID_ROWS)]);
      // Revoked in the "dashboard" (the sandbox's admin route) before the run.
      expect(await admin(sb, '/_sandbox/keys/revoke', { key: ANDROID })).toBe(200);
      const concurrency = 4;
      const base = { apiKey: undefined, apiKeyIos: IOS, concurrency };

      const first = await runMigration({
        config: testConfig(prefix, sb.url, { ...base, apiKeyAndroid: ANDROID }),
        logger: silentLogger(),
        sources: [source],
        runId: 'revoked',
        outDir: join(fx.dir, 'revoked-a'),
      });
      expect(first.exitCode).toBe(3);
      expect(first.summary.status).toBe('stopped');
      // The App Store rows all went on; every Play row is still queued.
      expect(first.summary.rows_succeeded).toBe(IOS_ROWS);
      expect(first.summary.rows_failed).toBe(0);
      expect(first.summary.rows_pending).toBe(ANDROID_ROWS);
      const fatal = first.summary.fatal;
      expect(fatal?.status).toBe(401);
      expect(fatal?.keys).toEqual([{ platform: 'android', key: 'goog_An…', variable: 'REVENUECAT_API_KEY_ANDROID', status: 401, code: 7225, rows: ANDROID_ROWS }]);
      expect(fatal?.message).toContain('REVENUECAT_API_KEY_ANDROID');
      expect(fatal?.message).toContain('goog_An…');
      expect(fatal?.message).not.toContain(ANDROID);
      const refused = sb.stats().byKey[sandboxLabel(ANDROID)]?.unauthorized ?? 0;
      expect(refused).toBeGreaterThan(0);
      // It stopped at the first answers: at most the requests that were in flight together.
      expect(refused).toBeLessThanOrEqual(concurrency);

      const redis = openRedis(redisUrl());
      const queue = openReceiptsQueue(redis, prefix);
      try {
        // Only that key's rows wait: the queue itself was never paused, nothing is active or failed.
        expect(await queue.isPaused()).toBe(false);
        const counts = await queue.getJobCounts('active', 'wait', 'delayed', 'prioritized', 'failed');
        expect(counts).toMatchObject({ active: 0, wait: 0, prioritized: 0, failed: 0, delayed: ANDROID_ROWS });
      } finally {
        await queue.close();
        redis.disconnect();
      }

      // The same command with the same (revoked) key: its rows stay parked and nothing is sent with it.
      const again = await runMigration({
        config: testConfig(prefix, sb.url, { ...base, apiKeyAndroid: ANDROID }),
        logger: silentLogger(),
        sources: [source],
        runId: 'revoked',
        outDir: join(fx.dir, 'revoked-b'),
      });
      expect(again.exitCode).toBe(3);
      expect(again.summary.rows_pending).toBe(ANDROID_ROWS);
      expect(again.summary.fatal?.keys?.[0]).toMatchObject({ platform: 'android', rows: ANDROID_ROWS });
      expect(sb.stats().byKey[sandboxLabel(ANDROID)]?.requests).toBe(refused);

      // With the new key, the same command sends the Play rows, and nothing twice.
      const fixed = await runMigration({
        config: testConfig(prefix, sb.url, { ...base, apiKeyAndroid: ANDROID_NEW }),
        logger: silentLogger(),
        sources: [source],
        runId: 'revoked',
        outDir: join(fx.dir, 'revoked-c'),
      });
      expect(fixed.exitCode).toBe(0);
      expect(fixed.summary.status).toBe('complete');
      expect(fixed.summary.rows_succeeded).toBe(IOS_ROWS + ANDROID_ROWS);
      expect(fixed.summary.fatal).toBeUndefined();
      const stats = sb.stats();
      expect(stats.byKey[sandboxLabel(ANDROID_NEW)]).toMatchObject({ accepted: ANDROID_ROWS, unauthorized: 0 });
      expect(stats.byKey[sandboxLabel(IOS)]?.requests).toBe(IOS_ROWS);
      expect(stats.successfulReceipts).toBe(IOS_ROWS + ANDROID_ROWS);
      expect(stats.receiptPosts.maxSuccessfulPerReceipt).toBe(1);
    });
  });

  it('a Google token past its cut-off that the store refuses fails as google_token_expired', async () => {
    await withSandbox({}, async (sb) => {
      const day = 86_400_000;
      const long = new Date(Date.now() - 200 * day).toISOString().slice(0, 10);
      const recent = new Date(Date.now() - 10 * day).toISOString().slice(0, 10);
      const source = await writeCsv(
        fx.dir,
        'cutoff.csv',
        ['platform', 'app_user_id', 'fetch_token', 'product_id', 'expires_at'],
        [
          ['android', 'cut-1', token(1, 'invalid'), 'gold', long],
          ['android', 'cut-2', token(2), 'gold', long],
          ['android', 'cut-3', token(3, 'invalid'), 'gold', recent],
        ],
      );
      const out = join(fx.dir, 'cutoff');
      const result = await runMigration({ config: testConfig(fx.newPrefix('cutoff'), sb.url), logger: silentLogger(), sources: [source], runId: 'cutoff', outDir: out });
      expect(result.summary.by_error_code).toEqual({ google_token_expired: 1, rc_7103: 1 });
      expect(result.summary.rows_succeeded).toBe(1);
      const failed = await readCsvFile(join(out, 'failed.csv'));
      const expired = failed.find((r) => r.app_user_id === 'cut-1');
      expect(expired?.error_reason).toBe('google_token_expired');
      expect(expired?.error_message).toBe(
        `Google Play no longer validates this purchase token: it expired on ${long}, more than ~60 days before it was sent (the store answers 410 purchaseTokenNoLongerValid), so RevenueCat cannot import it; retrying will not help.`,
      );
      // Two finished rows were flagged at ingest: the refused one and the one the store still took.
      expect(result.summary.rows_past_google_cutoff).toBe(2);
    });
  });
});
