// Google tokens near the ~60-day cut-off (issue 12): with an expiry column, Google rows are queued with BullMQ
// priorities so the ones whose cut-off comes soonest are taken first, rows past the cut-off are flagged and still
// sent, and the expiry column never reaches the API. Against real Redis and BullMQ, and the sandbox.
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { ingestSources } from '../src/commands/ingest.js';
import { runMigration } from '../src/commands/run.js';
import { LOWEST_PRIORITY } from '../src/ingest/tokenExpiry.js';
import { silentLogger } from '../src/logger.js';
import { RECEIPTS_QUEUE } from '../src/redis/keys.js';
import type { ReceiptJobData } from '../src/types.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { redisUrl } from './support/redis.js';

const DAY = 86_400_000;
const HEADER = ['platform', 'app_user_id', 'product_id', 'token', 'expires_at'];

describe('Google tokens near the cut-off', () => {
  const fx = pipelineFixture('cutoff');
  const logger = silentLogger();
  const connection = (): { url: string; maxRetriesPerRequest: null } => ({ url: redisUrl(), maxRetriesPerRequest: null });

  /** The export: Google rows with and without expiry (ISO, epoch ms, epoch s), an iOS row, a malformed expiry. */
  const exportRows = (now: number, tag: string): string[][] => [
    ['android', `${tag}-cut50`, 'gold', token(2), new Date(now - 10 * DAY).toISOString()], // line 2: cut-off in 50 days
    ['ios', `${tag}-ios`, '', token(3), new Date(now - 59 * DAY).toISOString()], // line 3: not Google: file order
    ['android', `${tag}-cut1`, 'gold', token(4), new Date(now - 59 * DAY).toISOString()], // line 4: cut-off tomorrow
    ['android', `${tag}-none`, 'gold', token(5), ''], // line 5: no expiry: file order
    ['android', `${tag}-past`, 'gold', token(6), new Date(now - 61 * DAY).toISOString()], // line 6: past the cut-off
    ['android', `${tag}-cut360`, 'gold', token(7), String(now + 300 * DAY)], // line 7: epoch ms, cut-off in 360 days
    ['android', `${tag}-cut30`, 'gold', token(8), String(Math.floor((now - 30 * DAY) / 1000))], // line 8: epoch s, in 30 days
    ['android', `${tag}-bad`, 'gold', token(9), 'next week'], // line 9: rejected
  ];

  it('queues Google rows by cut-off (soonest first), then the rest in file order; a worker takes them in that order', async () => {
    const prefix = fx.newPrefix('cutoff-queue');
    const config = testConfig(prefix, fx.sandbox.url);
    const now = Date.now();
    const google = await writeCsv(fx.dir, 'google.csv', HEADER, exportRows(now, 'q'));
    // A later file without an expiry column: its rows queue behind the prioritized ones, not ahead of them.
    const later = await writeCsv(
      fx.dir,
      'later.csv',
      ['platform', 'app_user_id', 'fetch_token'],
      [
        ['ios', 'q-later-1', token(20)],
        ['ios', 'q-later-2', token(21)],
      ],
    );

    const { result } = await ingestSources({ config, logger, sources: [google, later], runId: 'order', progressEveryMs: 0 });
    expect(result).toMatchObject({ rowsRead: 10, queued: 9, rejected: 1, pastCutoff: 1 });

    const queue = new Queue<ReceiptJobData, void, string>(RECEIPTS_QUEUE, { connection: connection(), prefix });
    try {
      // Nothing waits without a priority (those jobs would be taken before every prioritized one).
      expect(await queue.getWaitingCount()).toBe(0);
      const jobs = await queue.getJobs(['prioritized'], 0, -1, true);
      const where = (j: { data: ReceiptJobData }): string => `${j.data.src === google ? 'google' : 'later'}:${j.data.line}`;
      expect(jobs.map(where)).toEqual(['google:4', 'google:8', 'google:2', 'google:7', 'google:3', 'google:5', 'google:6', 'later:2', 'later:3']);

      const byLine = new Map(jobs.filter((j) => j.data.src === google).map((j) => [j.data.line, j]));
      // The flag and the expiry travel with the row; the expiry is never part of the request body.
      expect(byLine.get(6)?.data.token_expiry).toEqual({ expires_at_ms: Date.parse(new Date(now - 61 * DAY).toISOString()), past_cutoff: true });
      expect(byLine.get(4)?.data.token_expiry?.past_cutoff).toBe(false);
      expect(byLine.get(7)?.data.token_expiry).toEqual({ expires_at_ms: now + 300 * DAY, past_cutoff: false });
      expect(byLine.get(8)?.data.token_expiry?.expires_at_ms).toBe(Math.floor((now - 30 * DAY) / 1000) * 1000);
      expect(byLine.get(3)?.data.token_expiry).toBeUndefined(); // iOS rows ignore the column
      expect(byLine.get(5)?.data.token_expiry).toBeUndefined();
      for (const job of jobs) {
        expect(Object.keys(job.data.body)).not.toContain('expires_at');
        expect(job.opts.priority).toBe(job.data.priority);
      }
      for (const line of [3, 5, 6]) expect(byLine.get(line)?.opts.priority).toBe(LOWEST_PRIORITY);
      expect(byLine.get(4)?.opts.priority).toBeLessThan(byLine.get(8)?.opts.priority ?? 0);

      // BullMQ takes them in that order: one worker, one job at a time, nothing sent.
      const taken: string[] = [];
      let worker: Worker<ReceiptJobData, void, string> | undefined;
      await new Promise<void>((resolve, reject) => {
        worker = new Worker<ReceiptJobData, void, string>(
          RECEIPTS_QUEUE,
          (job) => {
            taken.push(where(job));
            if (taken.length === 9) resolve();
            return Promise.resolve();
          },
          { connection: connection(), prefix, concurrency: 1 },
        );
        worker.on('error', reject);
      });
      await worker?.close();
      expect(taken).toEqual(['google:4', 'google:8', 'google:2', 'google:7', 'google:3', 'google:5', 'google:6', 'later:2', 'later:3']);
    } finally {
      await queue.close();
    }
  });

  it('gives no priority at all to a run without an expiry column', async () => {
    const prefix = fx.newPrefix('cutoff-plain');
    const config = testConfig(prefix, fx.sandbox.url);
    const plain = await writeCsv(
      fx.dir,
      'plain.csv',
      ['platform', 'app_user_id', 'product_id', 'token'],
      [
        ['android', 'p-1', 'gold', token(30)],
        ['android', 'p-2', 'gold', token(31)],
      ],
    );
    const { result } = await ingestSources({ config, logger, sources: [plain], runId: 'plain', progressEveryMs: 0 });
    expect(result).toMatchObject({ queued: 2, pastCutoff: 0 });
    const queue = new Queue<ReceiptJobData, void, string>(RECEIPTS_QUEUE, { connection: connection(), prefix });
    try {
      expect(await queue.getPrioritizedCount()).toBe(0);
      const waiting = await queue.getWaiting();
      expect(waiting).toHaveLength(2);
      for (const job of waiting) {
        expect(job.data.priority).toBeUndefined();
        expect(job.opts.priority ?? 0).toBe(0);
      }
    } finally {
      await queue.close();
    }
  });

  it('sends every row, flagged ones included, against the sandbox; the expiry column comes back in reports as input', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url, { concurrency: 1 });
    const now = Date.now();
    const source = await writeCsv(fx.dir, 'run.csv', HEADER, exportRows(now, 'r'));
    const run = await runMigration({ config, logger, sources: [source], runId: 'cutoff-run', outDir: join(fx.dir, 'run'), pollMs: 20, progressEveryMs: 0 });
    expect(run.ingest).toMatchObject({ queued: 7, rejected: 1, pastCutoff: 1 });
    expect(run.summary).toMatchObject({ rows_read: 8, rows_succeeded: 7, rows_rejected: 1 });
    expect(fx.sandbox.peekSubscriber('r-past')).toBeDefined(); // sent, although flagged
    const rejected = await readCsvFile(run.files.rejected);
    expect(rejected.map((r) => [r.error_line, r.expires_at])).toEqual([['9', 'next week']]);
    expect(rejected[0]?.error_reason).toMatch(/^expires_at "next week" is not a time/);
  });
});
