// Redis at maxmemory (noeviction): writes are refused with "OOM command not allowed" while reads still work.
// Each test has a redis-server of its own (ports 7200–7249, a small maxmemory, no persistence) and fills it in
// the middle of a run: the run must pause with one warning that names the cause, make no progress while Redis
// is full, and finish once memory is freed, with every row read accounted for exactly once.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { runMigration } from '../src/commands/run.js';
import { ingest, type IngestResult } from '../src/ingest/ingester.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { createLogger, type Logger } from '../src/logger.js';
import { openReceiptsQueue, type ReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { openRedis } from '../src/redis/connection.js';
import { isOutOfMemory } from '../src/redis/memoryPressure.js';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';
import { readCsvFile, tempDir, testConfig, token, writeCsv } from './support/harness.js';
import { freePortIn, startPrivateRedis, type PrivateRedis } from './support/privateRedis.js';
import { until } from './support/until.js';

const PORTS = { first: 7200, last: 7249 };
const PREFIX = 'oom';
const HEADER = ['platform', 'app_user_id', 'fetch_token', 'product_id'];
const MB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------
// Helpers

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

interface LogLine {
  level: number;
  msg: string;
  role?: string;
  [field: string]: unknown;
}

const WARN = 40;
const ERROR = 50;

/** A real pino logger whose lines are kept for the test to read. */
function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = {
    write(chunk: string): boolean {
      for (const text of chunk.split('\n')) if (text.trim()) lines.push(JSON.parse(text) as LogLine);
      return true;
    },
  };
  return { logger: createLogger('debug', sink as unknown as NodeJS.WritableStream), lines };
}

const maxmemoryWarnings = (lines: LogLine[], role: string): LogLine[] => lines.filter((l) => l.level === WARN && l.role === role && l.msg.startsWith('Redis is at maxmemory'));

async function memory(redis: Redis): Promise<{ used: number; max: number }> {
  const info = await redis.info('memory');
  return { used: Number(/^used_memory:(\d+)/m.exec(info)?.[1]), max: Number(/^maxmemory:(\d+)/m.exec(info)?.[1]) };
}

/** Grows a ballast key 1 MB at a time until Redis refuses: from then on, every write that grows memory fails. */
async function fillToMaxmemory(redis: Redis): Promise<number> {
  const chunk = 'b'.repeat(MB);
  for (let i = 0; i < 4096; i++) {
    try {
      await redis.append('ballast', chunk);
    } catch (err) {
      if (!isOutOfMemory(err)) throw err;
      return i;
    }
  }
  throw new Error('Redis never refused a write: is maxmemory set?');
}

/** An App Store receipt of about 3 KB (a realistic size), with the sandbox directive at its end. */
function receipt(i: number, directive = ''): string {
  return `MIIT${'x'.repeat(3000)}${token(i, directive)}`;
}

interface Plan {
  rows: string[][];
  good: number;
  invalid: number;
  rejected: number;
  duplicates: number;
}

/** `n` rows: most succeed, some are refused by the store (failed), some are not valid rows, some repeat a row. */
function planRows(n: number, tokenOf: (i: number, directive?: string) => string): Plan {
  const plan: Plan = { rows: [], good: 0, invalid: 0, rejected: 0, duplicates: 0 };
  let lastGood: string[] | undefined;
  for (let i = 0; i < n; i++) {
    const user = `user-${i % 300}`;
    if (i % 61 === 9 && lastGood) {
      plan.rows.push([...lastGood]); // same platform, user and token as an earlier line
      plan.duplicates++;
    } else if (i % 47 === 5) {
      plan.rows.push(['ios', '', tokenOf(i), 'pro.monthly']); // no app_user_id: rejected at ingest
      plan.rejected++;
    } else if (i % 23 === 4) {
      plan.rows.push(['ios', user, tokenOf(i, 'invalid'), 'pro.monthly']);
      plan.invalid++;
    } else {
      lastGood = ['ios', user, tokenOf(i), 'pro.monthly'];
      plan.rows.push(lastGood);
      plan.good++;
    }
  }
  return plan;
}

/** Every input line is in exactly one report file, and the counters add up to the rows read. */
async function expectEveryRowOnce(result: Awaited<ReturnType<typeof runMigration>>, plan: Plan): Promise<void> {
  const s = result.summary;
  const total = plan.rows.length;
  expect(s.status).toBe('complete');
  expect(s.rows_read).toBe(total);
  expect(s.rows_rejected).toBe(plan.rejected);
  expect(s.rows_duplicate).toBe(plan.duplicates);
  expect(s.rows_queued).toBe(plan.good + plan.invalid);
  expect(s.rows_succeeded).toBe(plan.good);
  expect(s.rows_failed).toBe(plan.invalid);
  expect(s.rows_pending).toBe(0);
  expect(s.rows_succeeded + s.rows_failed + s.rows_rejected + s.rows_duplicate).toBe(s.rows_read);

  const succeeded = await readCsvFile(result.files.succeeded);
  const failed = await readCsvFile(result.files.failed);
  const rejected = await readCsvFile(result.files.rejected);
  const dups = await readCsvFile(result.files.duplicates);
  expect(failed.every((r) => r.reason !== 'job_failed')).toBe(true);
  const lines = [...succeeded.map((r) => r.line), ...failed.map((r) => r.error_line), ...rejected.map((r) => r.error_line), ...dups.map((r) => r.line)]
    .map(Number)
    .sort((a, b) => a - b);
  expect(lines).toEqual(Array.from({ length: total }, (_, i) => i + 2));
}

// ---------------------------------------------------------------------------------------------------------

describe('Redis at maxmemory', () => {
  let redis: PrivateRedis;
  let sandbox: Sandbox;
  let dir: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  const opened: { close(): Promise<void> | void }[] = [];

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    redis = await startPrivateRedis({ port: await freePortIn(PORTS.first, PORTS.last), args: ['--appendonly', 'no', '--save', ''] });
    sandbox = await startSandbox({ latencyMs: 2 });
    dir = await tempDir('maxmemory');
  });

  afterEach(async () => {
    for (const o of opened.splice(0).reverse()) await o.close();
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await sandbox?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A connection of the test's own, for setting maxmemory, the ballast, and reading state. */
  function admin(): Redis {
    const conn = openRedis(redis.url);
    opened.push({ close: () => void conn.disconnect() });
    return conn;
  }

  it('ingest pauses at maxmemory with one warning, makes no progress while full, and queues every row once after', async () => {
    const conn = admin();
    await conn.config('SET', 'maxmemory', '0');
    const runId = 'ingest-full';
    const plan = planRows(1200, receipt);
    const source = await writeCsv(dir, 'receipts-ingest.csv', HEADER, plan.rows);
    const queue: ReceiptsQueue = openReceiptsQueue(conn, PREFIX);
    opened.push({ close: () => queue.close() });
    const ledger = new RunLedger(conn, PREFIX, runId);
    const { logger, lines } = capturingLogger();

    // Room for about a third of the file's jobs (each carries a 3 KB receipt, twice: body and input row).
    const before = await memory(conn);
    await conn.config('SET', 'maxmemory', String(before.used + 3 * MB));
    let settled = false;
    const running = ingest({ queue, ledger, logger }, { runId, sources: [source], columns: {}, chunkSize: 50, maxAttempts: 8, highWaterMark: 0 }).finally(() => (settled = true));
    running.catch(() => undefined);

    await until('the maxmemory warning', () => maxmemoryWarnings(lines, 'ingest').length > 0 || settled, { timeoutMs: 30_000 });
    expect(settled).toBe(false);
    const warning = maxmemoryWarnings(lines, 'ingest')[0] as LogLine;
    expect(warning.msg).toMatch(/^Redis is at maxmemory \(used [\d.]+ MB of [\d.]+ MB\): ingest paused; free memory, raise maxmemory, or lower --high-water-mark/);
    expect(warning.maxBytes).toBe(before.used + 3 * MB);

    // Paused mid-file: nothing more is admitted or queued while Redis is full.
    const paused = { state: await ledger.state(), waiting: await queue.getWaitingCount() };
    expect(paused.state.rows_read).toBeGreaterThan(0);
    expect(paused.state.rows_read).toBeLessThan(plan.rows.length);
    await sleep(1500);
    expect(settled).toBe(false);
    expect((await ledger.state()).rows_read).toBe(paused.state.rows_read);
    expect(await queue.getWaitingCount()).toBe(paused.waiting);

    // Room again: the same ingest goes on from where it stopped.
    await conn.config('SET', 'maxmemory', String(before.used + 256 * MB));
    const result: IngestResult = await withDeadline(running, 60_000, 'the ingest to finish');
    expect(result.aborted).toBe(false);
    expect(result.rowsRead).toBe(plan.rows.length);
    // The ledger admits a chunk shard by shard: a chunk refused halfway answers "already queued" for the rows its
    // first attempt admitted, so the ingest's own tally may call some re-queued. The ledger counts each once.
    expect(result.queued + result.requeued).toBe(plan.good + plan.invalid);
    expect(result.rejected).toBe(plan.rejected);
    expect(result.duplicates).toBe(plan.duplicates);
    expect(result.queued + result.requeued + result.rejected + result.duplicates).toBe(result.rowsRead);
    const state = await ledger.state();
    expect(state.ingest).toBe('done');
    expect(state.rows_read).toBe(plan.rows.length);
    expect(state.rows_queued).toBe(plan.good + plan.invalid);
    expect(state.rows_rejected).toBe(plan.rejected);
    expect(state.rows_duplicate).toBe(plan.duplicates);
    // One job per queued row: none lost where addBulk was refused halfway, none added twice.
    expect(await queue.getWaitingCount()).toBe(plan.good + plan.invalid);
    expect(maxmemoryWarnings(lines, 'ingest')).toHaveLength(1);
    expect(lines.some((l) => l.role === 'ingest' && l.msg === 'Redis accepts writes again: ingest resumed')).toBe(true);

    // The same run, continued by `run`: the workers send every queued row and the report adds up.
    const config = testConfig(PREFIX, sandbox.url, { redisUrl: redis.url, ratePerSecond: 1000, concurrency: 16 });
    const sentBefore = sandbox.stats().receiptPosts.distinct;
    const run = await withDeadline(
      runMigration({ config, logger: capturingLogger().logger, sources: [source], runId, outDir: join(dir, 'report-ingest') }),
      120_000,
      'the run to finish',
    );
    await expectEveryRowOnce(run, plan);
    expect(sandbox.stats().receiptPosts.distinct - sentBefore).toBe(plan.good + plan.invalid);
    expect(unhandled).toEqual([]);
  });

  it('workers wait at maxmemory with their answers and keep their job locks, survive BullMQ refusals, and give every row one outcome', async () => {
    const conn = admin();
    await conn.config('SET', 'maxmemory', String(64 * MB));
    await conn.del('ballast');
    const runId = 'workers-full';
    const plan = planRows(1500, (i, d) => token(i + 100_000, d));
    const source = await writeCsv(dir, 'receipts-work.csv', HEADER, plan.rows);
    // Short job locks, so that Redis stays full for longer than a lock lasts unless it is kept alive.
    const config = testConfig(PREFIX, sandbox.url, {
      redisUrl: redis.url,
      ratePerSecond: 250,
      concurrency: 8,
      lockDurationMs: 1500,
      stalledIntervalMs: 500,
      userLockMs: 5000,
      highWaterMark: 0,
    });
    const ledger = new RunLedger(conn, PREFIX, runId);
    const { logger, lines } = capturingLogger();
    const sentBefore = sandbox.stats().receiptPosts;

    let settled = false;
    const running = runMigration({ config, logger, sources: [source], runId, outDir: join(dir, 'report-work') }).finally(() => (settled = true));
    running.catch(() => undefined);

    // Mid-run, Redis fills up.
    await until(
      '300 outcomes',
      async () => {
        const s = await ledger.state();
        return s.rows_succeeded + s.rows_failed >= 300;
      },
      { timeoutMs: 60_000 },
    );
    await fillToMaxmemory(conn);
    await until("the workers' maxmemory warning", () => maxmemoryWarnings(lines, 'workers').length > 0, { timeoutMs: 30_000 });
    const warning = maxmemoryWarnings(lines, 'workers')[0] as LogLine;
    expect(warning.msg).toMatch(/^Redis is at maxmemory \(used [\d.]+ MB of 64\.0 MB\): workers paused; free memory or raise maxmemory/);

    // While full: no outcome is written, and the run does not end. Twice as long as a job lock lasts: BullMQ
    // cannot renew locks at maxmemory, so the held rows keep theirs alive themselves (queue/jobLock.ts).
    const done = async (): Promise<number> => {
      const s = await ledger.state();
      return s.rows_succeeded + s.rows_failed;
    };
    // The answers already on their way when Redis filled are written or refused; then nothing moves.
    let last = -1;
    const atPause = await until(
      'the outcomes to stop moving',
      async () => {
        const now = await done();
        const still = now === last;
        last = now;
        return still ? now : undefined;
      },
      { timeoutMs: 30_000, everyMs: 150 },
    );
    expect(atPause).toBeLessThan(plan.good + plan.invalid);
    await sleep(3000);
    expect(await done()).toBe(atPause);
    expect(settled).toBe(false);

    // Memory freed: the run finishes by itself.
    await conn.del('ballast');
    const result = await withDeadline(running, 120_000, 'the run to finish after memory was freed');
    await expectEveryRowOnce(result, plan);

    // Every queued row reached the API exactly once: no held row lost its lock and came back to be sent again.
    const sent = sandbox.stats().receiptPosts;
    expect(sent.distinct - sentBefore.distinct).toBe(plan.good + plan.invalid);
    expect(sent.total - sentBefore.total).toBe(plan.good + plan.invalid);
    // And BullMQ finished every job: none left active without a lock, to be sent again by the next worker.
    const queue = openReceiptsQueue(conn, PREFIX);
    opened.push({ close: () => queue.close() });
    const counts = await queue.getJobCounts('active', 'wait', 'delayed', 'prioritized', 'failed');
    expect(counts).toEqual({ active: 0, wait: 0, delayed: 0, prioritized: 0, failed: 0 });

    // One warning for the episode, not one per row, per BullMQ refusal or per lock; nothing logged as an error.
    expect(maxmemoryWarnings(lines, 'workers')).toHaveLength(1);
    expect(maxmemoryWarnings(lines, 'ingest').length).toBeLessThanOrEqual(1);
    expect(lines.filter((l) => l.level >= ERROR)).toEqual([]);
    expect(lines.some((l) => l.role === 'workers' && l.msg === 'Redis accepts writes again: workers resumed')).toBe(true);
    expect(unhandled).toEqual([]);
  });
});
