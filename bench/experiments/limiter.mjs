#!/usr/bin/env node
// Experiment (not part of `npm run bench`): how many 429s does BullMQ's limiter alone cause against the sandbox's
// sliding 1-second window, and what rate does it reach, for several limiter settings? Two worker processes
// (bench/experiments/limiter-worker.mjs: user lock + POST, no pause, no retry, no adaptive rate) drain the same
// rows against `rc-migrate sandbox --rate-limit 100 --latency 50`.
//
//   node bench/experiments/limiter.mjs [--rows 3000] [--concurrency 16]
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnNode, startSandboxChild, stopAllChildren, stopChild, waitForStdout } from '../lib/children.mjs';
import { writeReceiptsCsv } from '../lib/csv.mjs';
import { ingestWithLibrary, loadDist, spanRate } from '../lib/pipeline.mjs';
import { deletePrefix, openRedis } from '../lib/redis.mjs';
import { ROOT, log, round, sleep } from '../lib/util.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROWS = arg('--rows', 3000);
const CONCURRENCY = arg('--concurrency', 16);
const WORKERS = 2;
const VARIANTS = [
  { name: 'fixed window 100 / 1000 ms (limiterFor before 1a6466c)', max: 100, duration: 1000 },
  { name: 'smoothed 10 / 100 ms (limiterFor(100) now)', max: 10, duration: 100 },
  { name: '10 / 102 ms (2% headroom)', max: 10, duration: 102 },
  { name: '10 / 105 ms (5% headroom)', max: 10, duration: 105 },
];

const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const id = Date.now().toString(36);
const prefixes = new Set();
const redis = await openRedis(redisUrl);
const tmp = await mkdtemp(join(tmpdir(), 'rcm-bench-lim-'));
let cleaning;
const cleanup = () =>
  (cleaning ??= (async () => {
    await stopAllChildren();
    for (const p of prefixes) await deletePrefix(redis, p).catch(() => 0);
    redis.disconnect();
    await rm(tmp, { recursive: true, force: true });
  })());
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => void cleanup().finally(() => process.exit(130)));

const lib = await loadDist();
const ctx = { lib, redisUrl, redis };
const file = join(tmp, 'rows.csv');
await writeReceiptsCsv(file, ROWS, { tag: 'l', rowsPerUser: 4 });
const sandbox = await startSandboxChild(['--rate-limit', '100', '--latency', '50']);
const results = [];
try {
  for (const [n, v] of VARIANTS.entries()) {
    const prefix = `bench-${id}-lim${n}`;
    prefixes.add(prefix);
    await sandbox.reset();
    await ingestWithLibrary(ctx, prefix, 'bench-limiter', file);
    const children = [];
    for (let w = 0; w < WORKERS; w++) {
      const child = spawnNode(join(ROOT, 'bench', 'experiments', 'limiter-worker.mjs'), [], {
        name: `limiter worker ${w}`,
        env: {
          BENCH_REDIS_URL: redisUrl,
          BENCH_PREFIX: prefix,
          BENCH_API_URL: sandbox.url,
          BENCH_CONCURRENCY: String(CONCURRENCY),
          BENCH_MAX: String(v.max),
          BENCH_DURATION: String(v.duration),
          BENCH_OUT: join(tmp, `lim-${n}-${w}.json`),
        },
      });
      children.push(child);
    }
    await Promise.all(children.map((c) => waitForStdout(c, /ready/)));
    log(`${v.name}: draining ${ROWS} rows`);
    const deadline = Date.now() + ROWS * 50 + 60_000;
    let idle = 0;
    while (idle < 3 && Date.now() < deadline) {
      await sleep(200);
      const [wait, active] = await Promise.all([redis.llen(`${prefix}:receipts:wait`), redis.llen(`${prefix}:receipts:active`)]);
      idle = wait + active === 0 ? idle + 1 : 0;
    }
    await Promise.all(children.map((c) => stopChild(c, { signal: 'SIGTERM', graceMs: 20_000 })));
    const recs = await Promise.all(children.map(async (_, w) => JSON.parse(await readFile(join(tmp, `lim-${n}-${w}.json`), 'utf8'))));
    const ok = recs.flatMap((r) => r.ok).sort((a, b) => a - b);
    const limited = recs.reduce((a, r) => a + r.limited.length, 0);
    const stats = await sandbox.stats();
    const r = {
      variant: v.name,
      nominalPerSecond: round((v.max * 1000) / v.duration, 1),
      okPerSecond: round(spanRate(ok.length, ok[0], ok[ok.length - 1]), 1),
      ok: ok.length,
      rateLimited: limited,
      share429: `${((limited / (ok.length + limited)) * 100).toFixed(2)}%`,
      userBusy: recs.reduce((a, r) => a + r.busy, 0),
      sandboxRateLimited: stats.rateLimited,
    };
    results.push(r);
    log(`${v.name}: ${r.okPerSecond} ok/s, ${limited} 429s (${r.share429})`);
    await deletePrefix(redis, prefix);
  }
} finally {
  await sandbox.stop();
  await cleanup();
}
console.table(results);
process.exit(0);
