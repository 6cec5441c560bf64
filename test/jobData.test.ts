// A queued job holds its receipt once (queue/jobData.ts): the input cell that repeats body.fetch_token is left
// empty on the queue and put back for the row's outcome, so failed.csv still gets the cells that were read.
import { afterAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import type { Job } from 'bullmq';
import { ingest } from '../src/ingest/ingester.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { silentLogger } from '../src/logger.js';
import { compactJobData, jobInput } from '../src/queue/jobData.js';
import { openReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { openRedis } from '../src/redis/connection.js';
import { jobIdOf } from '../src/redis/keys.js';
import type { ReceiptJobData } from '../src/types.js';
import { outcomeOf } from '../src/workers/outcome.js';
import { tempDir, writeCsv } from './support/harness.js';
import { dropPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const RECEIPT = `MIIT${'q83vAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g+/'.repeat(100)}==`;

function row(input: Record<string, string>, fetchToken: string): ReceiptJobData {
  return { run: 'r', fp: 'f', src: 'a.csv', line: 2, platform: 'ios', body: { app_user_id: 'u1', fetch_token: fetchToken }, input };
}

describe('compactJobData and jobInput', () => {
  it('empties the cell that is the body’s fetch_token, names its column, and gives the cells back in their order', () => {
    const input = { platform: 'ios', app_user_id: 'u1', receipt: RECEIPT, note: 'kept' };
    const data = row(input, RECEIPT);
    const compact = compactJobData(data);
    expect(compact.token_column).toBe('receipt');
    expect(compact.input).toEqual({ platform: 'ios', app_user_id: 'u1', receipt: '', note: 'kept' });
    expect(JSON.stringify(compact).split(RECEIPT).length - 1).toBe(1);
    const back = jobInput(compact);
    expect(back).toEqual(input);
    expect(Object.keys(back)).toEqual(Object.keys(input));
    // the row given is left as it was (admission may read it again after a refused addBulk)
    expect(data.input.receipt).toBe(RECEIPT);
    expect(data.token_column).toBeUndefined();
  });

  it('leaves a cell alone that differs from the body (trimmed whitespace), and data already compact', () => {
    const padded = row({ app_user_id: 'u1', receipt: ` ${RECEIPT} ` }, RECEIPT);
    expect(compactJobData(padded)).toBe(padded);
    expect(jobInput(padded)).toBe(padded.input);
    const compact = compactJobData(row({ app_user_id: 'u1', receipt: RECEIPT }, RECEIPT));
    expect(compactJobData(compact)).toBe(compact);
  });
});

describe('a queued job', () => {
  const prefix = uniquePrefix('jobdata');
  let dir = '';
  afterAll(async () => {
    await dropPrefix(prefix);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stores the receipt once in Redis, and a failed outcome built from it has every input cell as read', async () => {
    dir = await tempDir('jobdata');
    const header = ['platform', 'app_user_id', 'receipt', 'product_id', 'account_created_at'];
    const cells = ['ios', 'user-1', RECEIPT, 'com.example.monthly', '2020-01-31'];
    const source = await writeCsv(dir, 'one.csv', header, [cells]);
    const redis = openRedis(redisUrl());
    const queue = openReceiptsQueue(redis, prefix);
    try {
      const ledger = new RunLedger(redis, prefix, 'once');
      const result = await ingest({ queue, ledger, logger: silentLogger() }, { runId: 'once', sources: [source], columns: {}, chunkSize: 10, maxAttempts: 3, highWaterMark: 0 });
      expect(result.queued).toBe(1);
      const [job] = (await queue.getWaiting()) as Job<ReceiptJobData, void, string>[];
      expect(job).toBeDefined();
      const stored = await redis.hget(queue.toKey(jobIdOf('once', (job as Job<ReceiptJobData, void, string>).data.fp)), 'data');
      expect(stored?.split(RECEIPT).length).toBe(2); // one occurrence
      const outcome = outcomeOf(job as Job<ReceiptJobData, void, string>, { status: 'failed', reason: 'rc_7103', message: 'invalid receipt', attempts: 1 });
      expect(outcome.input).toEqual(Object.fromEntries(header.map((c, i) => [c, cells[i]])));
      expect(outcome.body?.fetch_token).toBe(RECEIPT);
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });
});
