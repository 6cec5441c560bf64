// A wrong API key must stop the whole run at once, keep every unsent row queued, and let the same command
// finish the run once the key is right, without sending anything twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runMigration } from '../src/commands/run.js';
import { openReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { openRedis } from '../src/redis.js';
import { silentLogger } from '../src/logger.js';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';
import { dropPrefix, redisUrl, uniquePrefix } from './support/redis.js';
import { tempDir, testConfig, token, writeCsv } from './support/harness.js';

describe('fatal API answers', () => {
  let sandbox: Sandbox;
  let dir: string;
  const prefix = uniquePrefix('fatal');

  beforeAll(async () => {
    sandbox = await startSandbox({ apiKeys: ['appl_right_key'], latencyMs: 5 });
    dir = await tempDir('fatal');
  });
  afterAll(async () => {
    await sandbox.close();
    await dropPrefix(prefix);
    await rm(dir, { recursive: true, force: true });
  });

  it('stops on a bad key with every row still queued, then finishes once the key is fixed', async () => {
    const rows = Array.from({ length: 300 }, (_, i) => ['ios', `user-${i}`, token(i)]);
    const source = await writeCsv(dir, 'r.csv', ['platform', 'app_user_id', 'fetch_token'], rows);

    const wrong = testConfig(prefix, sandbox.url, { apiKey: 'appl_wrong_key', ratePerSecond: 50, concurrency: 4 });
    const stopped = await runMigration({ config: wrong, logger: silentLogger(), sources: [source], runId: 'fatal', outDir: join(dir, 'a') });
    expect(stopped.exitCode).toBe(3);
    expect(stopped.summary.status).toBe('stopped');
    expect(stopped.summary.fatal?.status).toBe(401);
    expect(stopped.summary.fatal?.message).toMatch(/REVENUECAT_API_KEY/);
    expect(stopped.summary.fatal?.message).not.toContain('appl_wrong_key');
    expect(stopped.summary.rows_succeeded + stopped.summary.rows_failed).toBe(0);
    // It stopped at the first answers, not after trying every row.
    expect(sandbox.stats().byStatus['401'] ?? 0).toBeLessThanOrEqual(8);

    const redis = openRedis(redisUrl());
    const queue = openReceiptsQueue(redis, prefix);
    try {
      const counts = await queue.getJobCounts('active', 'wait', 'delayed', 'prioritized', 'completed', 'failed');
      expect(counts.active).toBe(0);
      expect(counts.failed).toBe(0);
      expect((counts.wait ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0)).toBe(stopped.summary.rows_queued);
      expect(await queue.isPaused()).toBe(true);
    } finally {
      await queue.close();
      redis.disconnect();
    }

    const right = testConfig(prefix, sandbox.url, { apiKey: 'appl_right_key', ratePerSecond: 200, concurrency: 8 });
    const finished = await runMigration({ config: right, logger: silentLogger(), sources: [source], runId: 'fatal', outDir: join(dir, 'b') });
    expect(finished.exitCode).toBe(0);
    expect(finished.summary.status).toBe('complete');
    expect(finished.summary.rows_read).toBe(300);
    expect(finished.summary.rows_succeeded).toBe(300);
    expect(finished.summary.fatal).toBeUndefined();
    const stats = sandbox.stats();
    expect(stats.successfulReceipts).toBe(300);
    expect(stats.receiptPosts.maxSuccessfulPerReceipt).toBe(1);
  });
});
