// The reconcile pass (src/queue/reconcile.ts): the ledger says which rows still need sending, and a row it holds
// as queued without an outcome and without a job is queued again by its fixed job id, read again from its source.
// Jobs are removed by hand here, as a Redis Cluster failover of the queue's master (or a kill between admitting
// and queueing) would lose them; test/clusterChaos.test.ts loses them for real.
import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ingest } from '../src/ingest/ingester.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { silentLogger } from '../src/logger.js';
import { reconcileRun } from '../src/queue/reconcile.js';
import { openReceiptsQueue, type ReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { openRedis } from '../src/redis/connection.js';
import { INGEST_STATE, jobIdOf, META } from '../src/redis/keys.js';
import { runMigration } from '../src/commands/run.js';
import { ingestOptionsFrom } from '../src/session/ingestOptions.js';
import { RunSession } from '../src/session/runSession.js';
import { SourceCatalog } from '../src/ledger/sourceCatalog.js';
import { sourceRowsAt } from '../src/session/sourceRows.js';
import type { ReceiptJobData } from '../src/types.js';
import { testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { captureLog } from './support/logCapture.js';
import { redisUrl } from './support/redis.js';

const HEADER = ['platform', 'app_user_id', 'fetch_token', 'product_id', 'price', 'currency'];
const rowsOf = (name: string, n: number, first: number): string[][] =>
  Array.from({ length: n }, (_, i) => [i % 2 ? 'ios' : 'android', `${name}-u${i}`, token(first + i), 'pro.monthly', '4.99', 'EUR']);

/** Every job of the queue, by id. */
async function jobsById(queue: ReceiptsQueue): Promise<Map<string, ReceiptJobData>> {
  const jobs = await queue.getJobs(['wait', 'prioritized', 'delayed']);
  return new Map(jobs.map((j) => [j.id as string, j.data]));
}

describe('the reconcile pass', () => {
  const fx = pipelineFixture('reconcile', { rateLimitPerSecond: 1000, latencyMs: 1 });

  /** A run ingested (admitted and queued) without anyone sending it. */
  async function ingested(name: string, n: number, first: number) {
    const prefix = fx.newPrefix(name);
    const config = testConfig(prefix, fx.sandbox.url, { highWaterMark: 0 });
    const source = await writeCsv(fx.dir, `${name}.csv`, HEADER, rowsOf(name, n, first));
    const redis = openRedis(redisUrl());
    const queue = openReceiptsQueue(redis, prefix);
    const ledger = new RunLedger(redis, prefix, name);
    const options = ingestOptionsFrom(config, { runId: name, sources: [source] });
    const catalog = new SourceCatalog(redis, prefix, name);
    const result = await ingest({ queue, ledger, logger: silentLogger(), catalog }, options);
    expect(result.queued).toBe(n);
    const rowsAt = sourceRowsAt({ runId: name, catalog });
    const close = async (): Promise<void> => {
      await queue.close();
      redis.disconnect();
    };
    return { prefix, config, source, redis, queue, ledger, rowsAt, close };
  }

  it('queues again, by the same id and with the same data, the rows whose job is gone; rows with a job or an outcome stay as they are', async () => {
    const run = await ingested('lost', 40, 10_000);
    try {
      const before = await jobsById(run.queue);
      expect(before.size).toBe(40);
      const ids = [...before.keys()];
      const lost = ids.slice(0, 10);
      for (const id of lost) await run.queue.remove(id);
      // Two of the ten were answered before their jobs went (answer first, then the job is removed).
      for (const id of lost.slice(0, 2)) {
        const data = before.get(id) as ReceiptJobData;
        await run.ledger.recordOutcome({
          status: 'succeeded',
          src: data.src,
          line: data.line,
          fp: data.fp,
          platform: data.platform,
          app_user_id: data.body.app_user_id,
          attempts: 1,
          finished_at: new Date().toISOString(),
        });
      }
      expect((await jobsById(run.queue)).size).toBe(30);

      const result = await reconcileRun({ ledger: run.ledger, queue: run.queue, redis: run.redis, rowsAt: run.rowsAt, maxAttempts: 3, batch: 7 });
      expect(result).toEqual({ pending: 38, requeued: 8, unreadable: [] });
      const after = await jobsById(run.queue);
      expect(after.size).toBe(38);
      for (const id of lost.slice(2)) expect(after.get(id)).toEqual(before.get(id));
      for (const id of lost.slice(0, 2)) expect(after.has(id)).toBe(false);
      for (const id of ids.slice(10)) expect(after.get(id)).toEqual(before.get(id));

      // Nothing left to mend: a second pass queues nothing.
      expect(await reconcileRun({ ledger: run.ledger, queue: run.queue, redis: run.redis, rowsAt: run.rowsAt, maxAttempts: 3 })).toEqual({
        pending: 38,
        requeued: 0,
        unreadable: [],
      });
    } finally {
      await run.close();
    }
  });

  it('leaves pending, naming the source, a lost row whose source changed since the run read it', async () => {
    const run = await ingested('changed', 6, 20_000);
    try {
      const before = await jobsById(run.queue);
      const [id, data] = [...before].find(([, d]) => d.line === 3) as [string, ReceiptJobData];
      await run.queue.remove(id);
      // The file is rewritten: line 3 now holds another token.
      const rows = rowsOf('changed', 6, 20_000);
      (rows[1] as string[])[2] = token(29_999);
      await writeFile(run.source, `${[HEADER, ...rows].map((r) => r.join(',')).join('\n')}\n`);
      const result = await reconcileRun({ ledger: run.ledger, queue: run.queue, redis: run.redis, rowsAt: run.rowsAt, maxAttempts: 3 });
      expect(result.requeued).toBe(0);
      expect(result.unreadable).toHaveLength(1);
      expect(result.unreadable[0]).toMatchObject({ fp: data.fp, src: run.source, line: 3 });
      expect(result.unreadable[0]?.reason).toContain(`source ${run.source} changed since the run read it`);
      expect(await run.queue.getJob(jobIdOf('changed', data.fp))).toBeUndefined();
    } finally {
      await run.close();
    }
  });

  it('at the end of a run: rows whose jobs were lost after the ingest are queued again, and each is sent once; a lost end-of-ingest flag is written again', async () => {
    const n = 60;
    const prefix = fx.newPrefix('end');
    const config = testConfig(prefix, fx.sandbox.url, { highWaterMark: 0 });
    const source = await writeCsv(fx.dir, 'end.csv', HEADER, rowsOf('end', n, 30_000));
    const before = fx.sandbox.stats().receiptPosts;
    const log = captureLog('info');
    const session = new RunSession({ config, logger: log.logger, runId: 'end', sources: [source], outDir: join(fx.dir, 'end-report'), pollMs: 50 });
    const result = await session.run(async (step) => {
      // The workers wait while the rows are queued and a third of their jobs is lost.
      await step.ctx.queue.pause();
      await step.ingest();
      const ids = [...(await jobsById(step.ctx.queue)).keys()];
      expect(ids).toHaveLength(n);
      for (const id of ids.slice(0, n / 3)) await step.ctx.queue.remove(id);
      // The run's meta lost the ingest's end too (its master died before its replica had it).
      await step.ctx.redis.hset(step.ledger.keys.meta, META.ingest, INGEST_STATE.running);
      await step.ctx.queue.resume();
    });
    const after = fx.sandbox.stats().receiptPosts;
    const s = result.summary;
    expect(result.exitCode).toBe(0);
    expect(s.status).toBe('complete');
    expect([s.rows_read, s.rows_queued, s.rows_succeeded, s.rows_failed, s.rows_pending]).toEqual([n, n, n, 0, 0]);
    expect(after.total - before.total).toBe(n);
    expect(after.distinct - before.distinct).toBe(n);
    expect(log.matching(/had no job .*queued again/).map((l) => l.rows)).toEqual([n / 3]);
  });

  it('on `run` with the id of a run whose jobs were lost: they are queued again, and each row is sent once', async () => {
    const n = 30;
    const run = await ingested('resumed', n, 40_000);
    try {
      const ids = [...(await jobsById(run.queue)).keys()];
      for (const id of ids.slice(0, 12)) await run.queue.remove(id);
    } finally {
      await run.close();
    }
    const before = fx.sandbox.stats().receiptPosts;
    const log = captureLog('info');
    const result = await runMigration({ config: run.config, logger: log.logger, sources: [run.source], runId: 'resumed', outDir: join(fx.dir, 'resumed-report'), pollMs: 50 });
    const after = fx.sandbox.stats().receiptPosts;
    const s = result.summary;
    expect(result.exitCode).toBe(0);
    expect([s.rows_read, s.rows_queued, s.rows_succeeded, s.rows_pending]).toEqual([n, n, n, 0]);
    expect(result.ingest?.resumedRows).toBe(n);
    expect(after.total - before.total).toBe(n);
    expect(after.distinct - before.distinct).toBe(n);
    // The resume's own pass, before its ingest reads on (not the end-of-run pass, on a drained queue).
    const mended = log.lines.findIndex((l) => /had no job .*queued again/.test(l.msg));
    const resuming = log.lines.findIndex((l) => l.msg === 'resuming after the last line ingested');
    expect(mended).toBeGreaterThanOrEqual(0);
    expect(resuming).toBeGreaterThan(mended);
    expect(log.lines[mended]?.rows).toBe(12);
    expect(log.lines.slice(mended + 1).some((l) => /had no job/.test(l.msg))).toBe(false);
  });
});
