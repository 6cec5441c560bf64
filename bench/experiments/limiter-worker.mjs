// Child of limiter.mjs: a BullMQ worker that does what rc-migrate's processor does on the wire (per-user lock in
// Redis, POST /v1/receipts with the project's RevenueCatClient, release) under a fixed limiter, and nothing
// else: no retry, no queue pause, no adaptive rate. It counts answers and writes them to $BENCH_OUT on SIGTERM.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeFileSync } from 'node:fs';
import { Worker } from 'bullmq';

const DIST = process.env.BENCH_DIST ?? fileURLToPath(new URL('../../dist', import.meta.url));
const dist = (path) => import(pathToFileURL(`${DIST}/${path}`).href);
const { connectRedis } = await dist('redis/connection.js');
const { RECEIPTS_QUEUE } = await dist('redis/keys.js');
const { RevenueCatClient } = await dist('revenuecat/client.js');
const { UserLock } = await dist('workers/userLock.js');

const env = process.env;
const connection = await connectRedis(env.BENCH_REDIS_URL);
const client = new RevenueCatClient({ baseUrl: env.BENCH_API_URL, apiKey: 'appl_sandbox_key', timeoutMs: 15_000, connections: 64 });
const lock = new UserLock(connection, env.BENCH_PREFIX, 60_000);
const rec = { ok: [], limited: [], busy: 0, other: 0 };
const worker = new Worker(
  RECEIPTS_QUEUE,
  async (job) => {
    const token = await lock.acquire(job.data.body.app_user_id);
    if (!token) {
      rec.busy++;
      return;
    }
    let result;
    try {
      result = await client.postReceipt(job.data.platform, job.data.body);
    } finally {
      await lock.release(job.data.body.app_user_id, token);
    }
    const now = Date.now();
    if (result.kind === 'response' && result.status === 200) rec.ok.push(now);
    else if (result.kind === 'response' && result.status === 429) rec.limited.push(now);
    else rec.other++;
  },
  { connection, prefix: env.BENCH_PREFIX, concurrency: Number(env.BENCH_CONCURRENCY), limiter: { max: Number(env.BENCH_MAX), duration: Number(env.BENCH_DURATION) } },
);
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.on('SIGTERM', async () => {
  await worker.close();
  await client.close();
  writeFileSync(env.BENCH_OUT, JSON.stringify(rec));
  process.exit(0);
});
