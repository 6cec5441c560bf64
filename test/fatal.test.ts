// A wrong API key must stop the whole run at once, keep every unsent row queued, and let the same command
// finish the run once the key is right, without sending anything twice.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runMigration } from '../src/commands/run.js';
import { openReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { openRedis } from '../src/redis/connection.js';
import { silentLogger } from '../src/logger.js';
import { redisUrl } from './support/redis.js';
import { testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';

describe('fatal API answers', () => {
  const fx = pipelineFixture('fatal', { apiKeys: ['appl_right_key'], latencyMs: 5 });

  it('stops on a bad key with every row still queued, then finishes once the key is fixed', async () => {
    const rows = Array.from({ length: 300 }, (_, i) => ['ios', `user-${i}`, token(i)]);
    const source = await writeCsv(fx.dir, 'r.csv', ['platform', 'app_user_id', 'fetch_token'], rows);

    const wrong = testConfig(fx.prefix, fx.sandbox.url, { apiKey: 'appl_wrong_key', ratePerSecond: 50, concurrency: 4 });
    const stopped = await runMigration({ config: wrong, logger: silentLogger(), sources: [source], runId: 'fatal', outDir: join(fx.dir, 'a') });
    expect(stopped.exitCode).toBe(3);
    expect(stopped.summary.status).toBe('stopped');
    expect(stopped.summary.fatal?.status).toBe(401);
    expect(stopped.summary.fatal?.message).toMatch(/REVENUECAT_API_KEY/);
    expect(stopped.summary.fatal?.message).not.toContain('appl_wrong_key');
    expect(stopped.summary.rows_succeeded + stopped.summary.rows_failed).toBe(0);
    // It stopped at the first answers, not after trying every row.
    expect(fx.sandbox.stats().byStatus['401'] ?? 0).toBeLessThanOrEqual(8);

    const redis = openRedis(redisUrl());
    const queue = openReceiptsQueue(redis, fx.prefix);
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

    const right = testConfig(fx.prefix, fx.sandbox.url, { apiKey: 'appl_right_key', ratePerSecond: 200, concurrency: 8 });
    const finished = await runMigration({ config: right, logger: silentLogger(), sources: [source], runId: 'fatal', outDir: join(fx.dir, 'b') });
    expect(finished.exitCode).toBe(0);
    expect(finished.summary.status).toBe('complete');
    expect(finished.summary.rows_read).toBe(300);
    expect(finished.summary.rows_succeeded).toBe(300);
    expect(finished.summary.fatal).toBeUndefined();
    const stats = fx.sandbox.stats();
    expect(stats.successfulReceipts).toBe(300);
    expect(stats.receiptPosts.maxSuccessfulPerReceipt).toBe(1);
  });
});
