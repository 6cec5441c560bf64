#!/usr/bin/env node
// A known-limit run on a Redis Cluster against the same run on one Redis node: does the cluster use the limit as
// well? Each round starts a sandbox child (`rc-migrate sandbox --rate-limit R --latency 50`, a sliding one-second
// window) and runs `rc-migrate run FILE --rate R` (one process: ingest, workers, report) on N rows, first against a
// private single redis-server, then against a private 3-master + 3-replica cluster on loopback (its own ports and
// data under the OS temp dir), and prints, from the sandbox's own second-by-second timeline:
//   - steady use: mean successful POSTs per second over the full seconds between the first and last one, / R;
//   - whole use: successful POSTs over the span from the first to the last second with traffic, / R;
//   - 429s and the run's wall time.
//
//   npm run build && node bench/cluster-rate.mjs [--rows 2000] [--rate 100] [--rounds 2] [--concurrency N]
//
// Needs redis-server and redis-cli on the PATH. Everything it starts is stopped, and its temp dir removed, on exit.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeReceiptsCsv } from './lib/csv.mjs';
import { CLI, SANDBOX_KEY, log } from './lib/util.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROWS = arg('rows', 2000);
const RATE = arg('rate', 100);
const ROUNDS = arg('rounds', 2);
/** --concurrency of the run (default: the tool's own) */
const CONCURRENCY = arg('concurrency', undefined);
const LATENCY_MS = 50;
/** Ports tried for the private Redis nodes (cluster bus on port + 10000); the tests use 7100-7299. */
const PORTS = [7300, 7399];

const tmp = mkdtempSync(join(tmpdir(), 'rcm-cluster-rate-'));
const children = new Set();

function start(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  child.stdout.on('data', (d) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr.on('data', (d) => (out = (out + d.toString()).slice(-20_000)));
  child.output = () => out;
  child.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  children.add(child);
  void child.exited.then(() => children.delete(child));
  return child;
}

async function stopAll() {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all([...children].map((c) => c.exited));
  rmSync(tmp, { recursive: true, force: true });
}
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

/** Polls `probe` until it returns something other than false/undefined; fails after `ms`. */
async function until(what, probe, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== false && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function portFree(port) {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

let nextPort = PORTS[0];
async function freePort() {
  for (; nextPort <= PORTS[1]; nextPort++) {
    const p = nextPort;
    if ((await portFree(p)) && (await portFree(p + 10000))) {
      nextPort++;
      return p;
    }
  }
  throw new Error(`no free port in ${PORTS.join('-')}`);
}

const cli = (port, ...args) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' });

async function redisServer(extra = []) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmp, `redis-${port}-`));
  start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', ...extra]);
  await until(`redis-server on ${port}`, () => cli(port, 'PING').stdout.trim() === 'PONG');
  return port;
}

async function singleNode() {
  const port = await redisServer();
  return { label: 'one node', env: { REDIS_URL: `redis://127.0.0.1:${port}` } };
}

async function cluster() {
  const ports = [];
  for (let i = 0; i < 6; i++) ports.push(await redisServer(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', '5000']));
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8' });
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${created.stdout}${created.stderr}`);
  await until(
    'cluster_state:ok with three replicas in sync',
    () =>
      ports.every((p) => /cluster_state:ok/.test(cli(p, 'CLUSTER', 'INFO').stdout)) &&
      ports.filter((p) => /role:slave/.test(cli(p, 'INFO', 'replication').stdout)).every((p) => /master_link_status:up/.test(cli(p, 'INFO', 'replication').stdout)),
    60_000,
  );
  return { label: '3+3 cluster', env: { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: ports.map((p) => `127.0.0.1:${p}`).join(',') } };
}

async function sandbox() {
  const child = start(process.execPath, [CLI, 'sandbox', '--port', '0', '--rate-limit', String(RATE), '--latency', String(LATENCY_MS)], {
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  const url = await until('the sandbox', () => /listening on (http:\/\/\S+)/.exec(child.output())?.[1]);
  return { child, url, stats: async () => (await fetch(`${url}/_sandbox/stats`)).json() };
}

async function measure(redis, file, round) {
  const sb = await sandbox();
  const runId = `cr-${round}`;
  const started = Date.now();
  const run = start(
    process.execPath,
    [
      CLI,
      'run',
      file,
      '--run-id',
      runId,
      '--rate',
      String(RATE),
      ...(CONCURRENCY ? ['--concurrency', String(CONCURRENCY)] : []),
      '--out',
      join(tmp, `${redis.label.replace(/\W+/g, '-')}-${round}`),
    ],
    {
      env: {
        PATH: process.env.PATH ?? '',
        ...redis.env,
        RC_MIGRATE_PREFIX: `bench-cr-${round}-${Date.now()}`,
        REVENUECAT_API_URL: sb.url,
        REVENUECAT_API_KEY: SANDBOX_KEY,
        LOG_LEVEL: 'warn',
      },
    },
  );
  const { code } = await run.exited;
  const wallS = (Date.now() - started) / 1000;
  const stats = await sb.stats();
  sb.child.kill('SIGTERM');
  await sb.child.exited;
  if (code !== 0) throw new Error(`rc-migrate run exited ${code} on ${redis.label}:\n${run.output().slice(-3000)}`);
  const buckets = stats.timeline.buckets.filter((b) => (b.succeeded ?? 0) > 0);
  const first = buckets[0].second;
  const last = buckets.at(-1).second;
  const inner = buckets.filter((b) => b.second > first && b.second < last);
  const innerSeconds = last - first - 1;
  const steady = inner.reduce((n, b) => n + b.succeeded, 0) / innerSeconds / RATE;
  const whole = stats.successfulReceipts / (last - first + 1) / RATE;
  return { label: redis.label, ok: stats.successfulReceipts, rateLimited: stats.rateLimited, steady, whole, spanS: last - first + 1, wallS };
}

try {
  const file = join(tmp, 'rows.csv');
  await writeReceiptsCsv(file, ROWS, { tag: 'cr', rowsPerUser: 4 });
  log(`${ROWS} rows, sandbox --rate-limit ${RATE} --latency ${LATENCY_MS}, rc-migrate run --rate ${RATE}, ${ROUNDS} round(s)`);
  const one = await singleNode();
  const many = await cluster();
  const results = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const redis of [one, many]) {
      log(`round ${round}: ${redis.label}`);
      results.push({ round, ...(await measure(redis, file, `${round}-${redis === one ? 'one' : 'cluster'}`)) });
    }
  }
  console.log(`\n${ROWS} rows, limit ${RATE}/s (sliding 1 s window, ${LATENCY_MS} ms latency), rc-migrate run --rate ${RATE}`);
  // A busy machine starves the run of CPU: the figures compare the two Redis set-ups only under the same load.
  console.log(
    `load average at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log('round  redis         succeeded  429s  steady use  whole use  span s  wall s');
  for (const r of results) {
    console.log(
      `${String(r.round).padEnd(6)} ${r.label.padEnd(13)} ${String(r.ok).padStart(9)} ${String(r.rateLimited).padStart(5)} ${r.steady.toFixed(3).padStart(11)} ${r.whole.toFixed(3).padStart(10)} ${String(r.spanS).padStart(7)} ${r.wallS.toFixed(1).padStart(7)}`,
    );
  }
} finally {
  await stopAll();
}
