// Child process of the ingest scenario: the baseline "raw BullMQ" path. It streams the same CSV with plain
// csv-parse, builds the same job data the ingester builds (run, fp, src, line, platform, body, input; fp is the
// same sha256 fingerprint), and adds it with Queue.addBulk in chunks, with the ingester's job options and ids
// (receiptJobOptions, jobIdOf, from dist/). What it leaves out is what rc-migrate adds: the ledger's admission
// script (dedupe + counters), row validation and the CSV reader's line/quote checks.
//
// env: BENCH_FILE, BENCH_REDIS_URL, BENCH_PREFIX, BENCH_RUN_ID, BENCH_CHUNK, BENCH_MAX_ATTEMPTS.
// Prints one JSON line: { rows, ms } (ms from the first byte read to the last addBulk answered).
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';
// dist/ as chosen by the benchmark (BENCH_DIST: its private copy of the build).
const DIST = process.env.BENCH_DIST ?? fileURLToPath(new URL('../../dist', import.meta.url));
const dist = (path) => import(pathToFileURL(`${DIST}/${path}`).href);
const { connectRedis } = await dist('redis/connection.js');
const { openReceiptsQueue, receiptJobOptions, RECEIPT_JOB } = await dist('queue/receiptsQueue.js');
const { jobIdOf } = await dist('redis/keys.js');
const { fingerprint } = await dist('ingest/fingerprint.js');

const file = process.env.BENCH_FILE;
const runId = process.env.BENCH_RUN_ID;
const chunkSize = Number(process.env.BENCH_CHUNK ?? 1000);
const opts = receiptJobOptions(Number(process.env.BENCH_MAX_ATTEMPTS ?? 6));

const redis = await connectRedis(process.env.BENCH_REDIS_URL);
const queue = openReceiptsQueue(redis, process.env.BENCH_PREFIX);
const started = performance.now();
let rows = 0;
let chunk = [];
const flush = async () => {
  const jobs = chunk.map((data) => ({ name: RECEIPT_JOB, data, opts: { ...opts, jobId: jobIdOf(runId, data.fp) } }));
  chunk = [];
  await queue.addBulk(jobs);
};
const parser = createReadStream(file).pipe(parse({ columns: true, bom: true }));
for await (const record of parser) {
  rows++;
  const body = { app_user_id: record.app_user_id, fetch_token: record.fetch_token, product_id: record.product_id, price: Number(record.price), currency: record.currency };
  chunk.push({
    run: runId,
    fp: fingerprint(record.platform, body.app_user_id, body.fetch_token),
    src: file,
    line: rows + 1,
    platform: record.platform,
    body,
    input: record,
  });
  if (chunk.length >= chunkSize) await flush();
}
if (chunk.length > 0) await flush();
const ms = performance.now() - started;
await queue.close();
await redis.quit();
process.stdout.write(`${JSON.stringify({ rows, ms })}\n`);
