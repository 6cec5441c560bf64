// Child process of the overhead scenario: a BullMQ Worker on the receipts queue with an empty processor, the
// same concurrency and the same limiter as `rc-migrate work --rate R --concurrency C` sets up, that processes
// BENCH_EXPECT jobs and then prints one JSON line: { count, firstMs, lastMs, readyMs } (epoch ms of the first and
// last completion and of the worker being ready).
//
// Loaded with lib/redis-probe.mjs (--import), it marks the probe itself at the first completion and at the last
// (markedJobs: the jobs in between), the same stretch the benchmark marks in `rc-migrate work`.
//
// env: BENCH_REDIS_URL, BENCH_PREFIX, BENCH_CONCURRENCY, BENCH_RATE, BENCH_EXPECT, BENCH_TIMEOUT_MS.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'bullmq';

const DIST = process.env.BENCH_DIST ?? fileURLToPath(new URL('../../dist', import.meta.url));
const dist = (path) => import(pathToFileURL(`${DIST}/${path}`).href);
const { connectRedis } = await dist('redis/connection.js');
const { RECEIPTS_QUEUE } = await dist('redis/keys.js');

const expect = Number(process.env.BENCH_EXPECT);
const rate = Number(process.env.BENCH_RATE);
const connection = await connectRedis(process.env.BENCH_REDIS_URL);
let count = 0;
let firstMs;
let lastMs;
let finish;
const finished = new Promise((resolve) => {
  finish = resolve;
});
const worker = new Worker(RECEIPTS_QUEUE, async () => undefined, {
  connection,
  prefix: process.env.BENCH_PREFIX,
  concurrency: Number(process.env.BENCH_CONCURRENCY),
  limiter: { max: Math.round(rate), duration: 1000 },
});
worker.on('completed', () => {
  const now = Date.now();
  if (firstMs === undefined) process.emit('SIGUSR2'); // probe snapshot 1 (no-op without the probe)
  firstMs ??= now;
  lastMs = now;
  if (++count >= expect) {
    process.emit('SIGUSR2'); // probe snapshot 2
    finish('done');
  }
});
worker.on('error', (err) => process.stderr.write(`worker error: ${err.message}\n`));
await worker.waitUntilReady();
const readyMs = Date.now();
const timer = setTimeout(() => finish('timeout'), Number(process.env.BENCH_TIMEOUT_MS ?? 600_000));
const how = await finished;
clearTimeout(timer);
await worker.close();
await connection.quit();
process.stdout.write(`${JSON.stringify({ count, firstMs, lastMs, readyMs, how, markedJobs: count - 1 })}\n`);
process.exit(how === 'done' ? 0 : 1);
