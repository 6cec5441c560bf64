// The high-water mark holds exactly: the ingester queues a chunk in parts that fit under the mark, so the queue
// never holds more waiting rows than the mark, whatever the chunk size (it used to pass it by up to a chunk).
import { afterAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { ingest } from '../src/ingest/ingester.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { createLogger } from '../src/logger.js';
import { queuedRows } from '../src/queue/highWater.js';
import { openReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { openRedis } from '../src/redis/connection.js';
import { tempDir, token, writeCsv } from './support/harness.js';
import { dropPrefix, redisUrl, uniquePrefix } from './support/redis.js';
import { until } from './support/until.js';

const PAUSED = 'queue above its high-water mark: reading paused until workers catch up';

describe('the high-water mark', () => {
  const prefix = uniquePrefix('highwater');
  let dir = '';
  afterAll(async () => {
    await dropPrefix(prefix);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is never passed, with chunks larger than the room left under it', async () => {
    dir = await tempDir('highwater');
    const rows = Array.from({ length: 300 }, (_, i) => ['android', `u${i}`, token(i), 'gold']);
    const source = await writeCsv(dir, 'rows.csv', ['platform', 'app_user_id', 'fetch_token', 'product_id'], rows);
    const redis = openRedis(redisUrl());
    const queue = openReceiptsQueue(redis, prefix);
    const pauses: number[] = [];
    const sink = {
      write(chunk: string): boolean {
        for (const text of chunk.split('\n')) if (text.includes(PAUSED)) pauses.push((JSON.parse(text) as { waiting: number }).waiting);
        return true;
      },
    };
    try {
      const ledger = new RunLedger(redis, prefix, 'hwm');
      let settled = false;
      const running = ingest(
        { queue, ledger, logger: createLogger('info', sink as unknown as NodeJS.WritableStream) },
        { runId: 'hwm', sources: [source], columns: {}, chunkSize: 64, maxAttempts: 3, highWaterMark: 100 },
      ).finally(() => (settled = true));
      running.catch(() => undefined);

      // No workers: each time the ingester pauses, the test looks at the queue, then drains it as workers would.
      const seen: number[] = [];
      let drained = 0;
      await until(
        'the ingest to end',
        async () => {
          if (pauses.length > seen.length) {
            seen.push(await queuedRows(queue));
            const waiting = await queue.getWaiting();
            for (const job of waiting) await job.remove();
            drained += waiting.length;
          }
          return settled;
        },
        { timeoutMs: 30_000, everyMs: 20 },
      );
      const result = await running;
      expect(result.queued).toBe(300);
      // Paused with the queue at most full to the mark, never above it: the chunks of 64 rows were split to fit
      // (the first pause finds 64 + 36 rows; the chunk's other 28 waited).
      expect(seen.length).toBeGreaterThanOrEqual(2);
      expect(seen[0]).toBe(100);
      for (const waiting of seen) expect(waiting).toBeLessThanOrEqual(100);
      expect(pauses.every((waiting) => waiting <= 100)).toBe(true);
      expect(drained + (await queuedRows(queue))).toBe(300);
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });
});
