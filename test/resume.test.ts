// kill -9 of an ingest mid-file, then the same command again: it continues where it stopped, and in the end
// the API saw every row exactly once (checked against the sandbox's own counters).
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startWorkers } from '../src/commands/work.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { openRedis } from '../src/redis/connection.js';
import { silentLogger } from '../src/logger.js';
import { redisUrl } from './support/redis.js';
import { SANDBOX_KEY, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { until } from './support/until.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');
const ROWS = 12_000;

describe('resumable ingest', () => {
  const fx = pipelineFixture('resume');

  it('continues after kill -9 without losing or repeating a row', async () => {
    const source = await writeCsv(
      fx.dir,
      'big.csv',
      ['platform', 'app_user_id', 'fetch_token'],
      Array.from({ length: ROWS }, (_, i) => ['ios', `r-${i % 3000}`, token(i)]),
    );
    const env = { PATH: process.env.PATH ?? '', REDIS_URL: redisUrl(), RC_MIGRATE_PREFIX: fx.prefix, LOG_LEVEL: 'info' };
    const args = [CLI, 'ingest', source, '--run-id', 'resume', '--high-water-mark', '0'];
    const redis = openRedis(redisUrl());
    const ledger = new RunLedger(redis, fx.prefix, 'resume');
    try {
      const first = spawn(process.execPath, args, { env, stdio: 'ignore' });
      const exited = new Promise((resolve) => first.on('close', resolve));
      // Kill it once a few chunks are queued, well before the end of the file.
      await until('3000 rows queued', async () => (await ledger.state()).rows_queued >= 3000, { timeoutMs: 20_000, everyMs: 2 });
      first.kill('SIGKILL');
      await exited;
      const killed = await ledger.state();
      expect(killed.ingest).toBe('running');
      expect(killed.rows_queued).toBeGreaterThanOrEqual(3000);
      expect(killed.rows_queued).toBeLessThan(ROWS);

      const second = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('close', (code) => resolve({ code, out }));
      });
      expect(second.code).toBe(0);
      const resumedPast = Number(/resumed past (\d+)/.exec(second.out)?.[1]);
      expect(resumedPast).toBeGreaterThan(0);
      const state = await ledger.state();
      expect(state).toMatchObject({ ingest: 'done', rows_read: ROWS, rows_queued: ROWS, rows_rejected: 0, rows_duplicate: 0 });

      const config = testConfig(fx.prefix, fx.sandbox.url, { ratePerSecond: 5000, concurrency: 32 });
      const workers = await startWorkers({ config: { ...config, apiKey: SANDBOX_KEY }, logger: silentLogger() });
      try {
        await until('the run to complete', async () => (await ledger.state()).complete, { timeoutMs: 120_000, everyMs: 100 });
      } finally {
        await workers.close();
      }
      expect((await ledger.state()).rows_succeeded).toBe(ROWS);
      const posts = fx.sandbox.stats().receiptPosts;
      expect(posts.distinct).toBe(ROWS);
      expect(posts.total).toBe(ROWS);
      expect(posts.maxPerReceipt).toBe(1);
    } finally {
      redis.disconnect();
    }
  });
});
