// The ingester against real Redis and BullMQ: idempotent re-ingest, duplicates, unusable files, and
// workers started apart from the ingest (`ingest` + `work`), as on a multi-machine setup.
import { describe, expect, it } from 'vitest';
import { ingestSources } from '../src/commands/ingest.js';
import { startWorkers } from '../src/commands/work.js';
import { reportRun } from '../src/commands/report.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { openRedis } from '../src/redis/connection.js';
import { silentLogger } from '../src/logger.js';
import { redisUrl } from './support/redis.js';
import { testConfig, token, writeCsv } from './support/harness.js';
import type { Config } from '../src/config.js';
import { pipelineFixture } from './support/fixture.js';
import { until } from './support/until.js';

async function waitComplete(config: Config, runId: string, timeoutMs = 30_000): Promise<void> {
  const redis = openRedis(config.redisUrl);
  try {
    const ledger = new RunLedger(redis, config.prefix, runId);
    await until(`run ${runId} to complete`, async () => (await ledger.state()).complete, { timeoutMs });
  } finally {
    redis.disconnect();
  }
}

describe('ingest + work', () => {
  const fx = pipelineFixture('ingest', { latencyMs: 1 });
  const logger = silentLogger();

  it('queues a file once however often it is ingested into one run, and records duplicates by line', async () => {
    const rows = Array.from({ length: 200 }, (_, i) => ['android', `u${i % 40}`, token(i), 'gold']);
    rows.push(['android', 'u1', token(1), 'gold']); // line 203 repeats line 3
    const source = await writeCsv(fx.dir, 'a.csv', ['platform', 'app_user_id', 'fetch_token', 'product_id'], rows);
    const config = testConfig(fx.prefix, fx.sandbox.url, { ingestChunkSize: 37 });

    const first = await ingestSources({ config, logger, sources: [source], runId: 'twice' });
    expect(first.result).toMatchObject({ queued: 200, duplicates: 1, rejected: 0 });
    const second = await ingestSources({ config, logger, sources: [source, source], runId: 'twice' });
    // Nothing new: the recorded progress lets it skip every line already queued.
    expect(second.result).toMatchObject({ queued: 0, duplicates: 0, requeued: 0, resumedRows: 402 });

    const workers = await startWorkers({ config, logger });
    try {
      await waitComplete(config, 'twice');
    } finally {
      await workers.close();
    }
    const stats = fx.sandbox.stats();
    expect(stats.receiptPosts.total).toBe(200);
    expect(stats.receiptPosts.maxPerReceipt).toBe(1);

    // After the run finished, ingesting again finds every row done and sends nothing.
    const third = await ingestSources({ config, logger, sources: [source], runId: 'twice' });
    expect(third.result).toMatchObject({ queued: 0, requeued: 0, resumedRows: 201 });
    const report = await reportRun({ config, runId: 'twice', outDir: `${fx.dir}/twice` });
    expect(report.summary).toMatchObject({ status: 'complete', rows_read: 201, rows_succeeded: 200, rows_duplicate: 1 });
    expect(report.exitCode).toBe(0);
  });

  it('rejects every row of a file whose header cannot be used, each with its line', async () => {
    const source = await writeCsv(
      fx.dir,
      'nohdr.csv',
      ['platform', 'user', 'receipt_blob'],
      [
        ['ios', 'a', 'x'],
        ['ios', 'b', 'y'],
      ],
    );
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const { result, exitCode } = await ingestSources({ config, logger, sources: [source], runId: 'nohdr' });
    expect(result).toMatchObject({ rejected: 2, queued: 0 });
    expect(exitCode).toBe(1);
    const redis = openRedis(redisUrl());
    try {
      const ledger = new RunLedger(redis, fx.prefix, 'nohdr');
      const rejections = [];
      for await (const r of ledger.rejections()) rejections.push(r);
      expect(rejections.map((r) => r.line).sort()).toEqual([2, 3]);
      expect(rejections[0]?.reason).toMatch(/app_user_id/);
    } finally {
      redis.disconnect();
    }
  });

  it('fails a row whose store stays down after the configured attempts, with the code and count', async () => {
    const source = await writeCsv(
      fx.dir,
      'down.csv',
      ['platform', 'app_user_id', 'fetch_token'],
      [
        ['ios', 'down-1', token(1, 'storedown')],
        ['ios', 'ok-1', token(2)],
      ],
    );
    const config = testConfig(fx.prefix, fx.sandbox.url, { maxAttempts: 3 });
    await ingestSources({ config, logger, sources: [source], runId: 'down' });
    const workers = await startWorkers({ config, logger });
    try {
      await waitComplete(config, 'down');
    } finally {
      await workers.close();
    }
    const redis = openRedis(redisUrl());
    try {
      const ledger = new RunLedger(redis, fx.prefix, 'down');
      const outcomes = [];
      for await (const o of ledger.outcomes()) outcomes.push(o);
      const down = outcomes.find((o) => o.app_user_id === 'down-1');
      expect(down).toMatchObject({ status: 'failed', reason: 'rc_7101', code: 7101, http_status: 500, attempts: 3 });
      expect(down?.message).toMatch(/^gave up after 3 attempts/);
      expect(outcomes.find((o) => o.app_user_id === 'ok-1')?.status).toBe('succeeded');
    } finally {
      redis.disconnect();
    }
  });
});
