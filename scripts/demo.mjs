#!/usr/bin/env node
// `npm run demo`: the one-command tour for a new user, right after `npm ci`. It runs the real CLI
// (`node dist/cli.js …`, printed as you would type it) on the sample data in examples/ against the bundled
// RevenueCat sandbox, then explains the report. Nothing here talks to the real RevenueCat API.
//
//   1. Redis: REDIS_URL (default redis://127.0.0.1:6379). When nothing answers there and `redis-server` is on
//      PATH, a private, throw-away redis-server is started on a free port for the demo and stopped at the end.
//   2. Sandbox: `node dist/cli.js sandbox --port 0 …` with rate limiting, latency and 5% injected 5xx faults, and
//      its App Store Server API stand-in: three purchases generated from its seed (the transaction ids of
//      examples/transaction-ids.csv) and a key pair it generates, its private key written as a .p8 in a temporary
//      directory of the demo's (removed at the end). The ids it prints are passed to plan and run as the
//      APPLE_* variables, with APP_STORE_SERVER_API_URL pointing at it.
//   3. Plan: `node dist/cli.js plan examples/*.csv …` reads and checks everything and sends nothing.
//   4. Run: `node dist/cli.js run examples/*.csv …` under the key prefix rcm-demo, so a real migration's keys
//      in the same Redis are never touched.
//   5. What the report means (a token shared by two users is held, not sent; rows given by a transaction id are
//      looked up, then imported), the sandbox's stats, and the run's own exit code (1 is the expected one).
//
// Environment: REDIS_URL; RC_MIGRATE_DEMO_PREFIX (key prefix, default rcm-demo; tests use their own). Every
// other RC_MIGRATE_* / REVENUECAT_* / APPLE_* / APP_STORE_SERVER_API_URL / LOG_LEVEL variable of your shell is
// left out of the demo's commands, so the demo behaves the same everywhere and never picks up a real API key.
//
// Exit code: the run's (see src/exitCodes.ts); 2 when the demo cannot start (no Redis, no build, bad REDIS_URL).
// The children (sandbox, private Redis) are stopped before exiting, on errors and on Ctrl-C too.
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { parse } from 'csv-parse/sync';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const CLI = 'dist/cli.js';
const SOURCES = ['examples/receipts.csv', 'examples/google-play-export.csv', 'examples/transaction-ids.csv'];
/** The rows given by an Apple transaction id, and the app and products the sandbox generates them for (--seed 7). */
const TRANSACTION_IDS = 'examples/transaction-ids.csv';
const APPLE_BUNDLE = 'com.example.app';
const APPLE_PRODUCTS = 'com.example.premium.monthly,com.example.lifetime:nonconsumable';
const SANDBOX_KEY = 'appl_sandbox_key';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
const PREFIX = process.env.RC_MIGRATE_DEMO_PREFIX?.trim() || 'rcm-demo';
/** Exit codes of rc-migrate (src/exitCodes.ts); the demo's own failures use CONFIG. */
const EXIT = { OK: 0, ROWS_FAILED: 1, CONFIG: 2, FATAL: 3, INCOMPLETE: 4, INTERNAL: 5 };
/** Children in their own process group: a Ctrl-C reaches only the demo, which then stops them in order. */
const DETACHED = process.platform !== 'win32';

const out = (line = '') => process.stdout.write(`${line}\n`);
const err = (line = '') => process.stderr.write(`${line}\n`);
const step = (title) => out(`\n== ${title}`);

class DemoError extends Error {
  constructor(message, code = EXIT.CONFIG) {
    super(message);
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Children: every one is tracked so that it can be stopped on the way out, whatever the way out is.

/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();

function spawnChild(command, args, options) {
  const child = spawn(command, args, { cwd: ROOT, detached: DETACHED, ...options });
  children.add(child);
  child.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
  void child.exited.then(() => children.delete(child));
  return child;
}

const alive = (child) => child.exitCode === null && child.signalCode === null && children.has(child);

/** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone (its ports closed). */
async function stopChild(child, graceMs = 5000) {
  if (!alive(child)) return;
  child.kill('SIGTERM');
  const gone = await Promise.race([child.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!gone) {
    child.kill('SIGKILL');
    await child.exited;
  }
}

// Last resort (process.exit from anywhere, an unexpected throw): nothing may outlive the demo.
process.on('exit', () => {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

// ---------------------------------------------------------------------------------------------------------
// Redis

const redact = (url) => url.replace(/\/\/([^@/]*)@/, '//***@');

/** 'ok' | 'down' (nothing answers) | an Error (something answered, but not as a usable Redis). */
async function probeRedis(url, connectTimeout = 1500) {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG' ? 'ok' : new Error('PING did not answer PONG');
  } catch (error) {
    // A ReplyError (NOAUTH, WRONGPASS, …) comes from a server that is there: starting another would not help.
    return error?.name === 'ReplyError' ? error : 'down';
  } finally {
    redis.disconnect();
  }
}

function onPath(name) {
  const exts = process.platform === 'win32' ? ['.exe', '.cmd', ''] : [''];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = join(dir, name + ext);
      try {
        accessSync(candidate, fsConstants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts `redis-server` on a free port, waits for PONG; retries on another port if the first was taken. */
async function startPrivateRedis(redisServer) {
  let lastOutput = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    out(`$ redis-server ${args.map((a) => (a === '' ? '""' : a)).join(' ')}`);
    const child = spawnChild(redisServer, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk) => (output = (output + chunk).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const url = `redis://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    while (alive(child) && Date.now() < deadline) {
      if ((await probeRedis(url, 500)) === 'ok') return { child, url };
      await sleep(100);
    }
    await stopChild(child);
    lastOutput = output;
  }
  throw new DemoError(`redis-server did not start:\n${lastOutput.trim()}`);
}

function printHowToGetRedis(url) {
  const compose = ['docker-compose.yml', 'compose.yaml', 'docker-compose.yaml'].some((f) => existsSync(join(ROOT, f)));
  err(`No Redis answers at ${redact(url)}, and redis-server is not on PATH to start a private one.`);
  err('rc-migrate keeps its queue and run ledgers in Redis. Get one, then run `npm run demo` again:');
  err('  Debian/Ubuntu:  sudo apt-get install redis-server');
  err('  macOS:          brew install redis');
  if (compose) err("  Docker:         docker compose up -d redis      (the repository's docker-compose.yml)");
  else err('  Docker:         docker run -d --name rc-migrate-redis -p 6379:6379 redis:7-alpine');
  err('or point REDIS_URL at a Redis you already have, e.g. REDIS_URL=redis://host:6379 npm run demo');
}

// ---------------------------------------------------------------------------------------------------------
// Sandbox

/** `keyOut`: where the sandbox writes the App Store Connect API key it generates (a .p8). */
async function startSandbox(env, keyOut) {
  const args = [
    ...[CLI, 'sandbox', '--port', '0', '--rate-limit', '25', '--latency', '40', '--latency-jitter', '40', '--fault-5xx', '0.05', '--seed', '7'],
    ...['--apple-bundle-id', APPLE_BUNDLE, '--apple-seed', '3', '--apple-seed-products', APPLE_PRODUCTS, '--apple-key-out', keyOut],
  ];
  out(`$ node ${args.join(' ')} &`);
  const child = spawnChild(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  // Two lines: where it listens, then the App Store Server API's base URL and the variables naming its key.
  const { url, apple } = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new DemoError('the sandbox did not say where it listens within 15 s', EXIT.INTERNAL)), 15_000);
    const lines = createInterface({ input: child.stdout });
    let listening;
    lines.on('line', (line) => {
      const m = /listening on (https?:\/\/\S+)/.exec(line);
      if (m) listening = m[1];
      if (listening && /^App Store Server API on /.test(line)) {
        clearTimeout(timer);
        resolve({ url: listening, apple: Object.fromEntries([...line.matchAll(/\b(APP_STORE_SERVER_API_URL|APPLE_[A-Z_]+)=(\S+)/g)].map((v) => [v[1], v[2]])) });
      }
    });
    void child.exited.then(({ code, signal, error }) => {
      clearTimeout(timer);
      reject(new DemoError(`the sandbox stopped before listening (${error?.message ?? code ?? signal}):\n${stderr.trim()}`, EXIT.INTERNAL));
    });
  });
  if (/:0$/.test(url)) throw new DemoError(`the sandbox printed port 0 (${url}) instead of the port it listens on`, EXIT.INTERNAL);
  for (const name of ['APP_STORE_SERVER_API_URL', 'APPLE_KEY_ID', 'APPLE_ISSUER_ID', 'APPLE_PRIVATE_KEY_FILE']) {
    if (!apple[name]) throw new DemoError(`the sandbox did not name ${name} for its App Store Server API`, EXIT.INTERNAL);
  }
  return { child, url, apple };
}

async function sandboxStats(url) {
  try {
    const res = await fetch(`${url}/_sandbox/stats`, { signal: AbortSignal.timeout(5000) });
    return res.ok ? await res.json() : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Report

function readCsv(path) {
  try {
    return parse(readFileSync(path, 'utf8'), { columns: true, skip_empty_lines: true, relax_column_count: true });
  } catch {
    return undefined;
  }
}

const clip = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function printRows(title, rows, describe, max = 6) {
  if (!rows) {
    out(`${title}: (not written)`);
    return;
  }
  out(`${title}: ${rows.length} row${rows.length === 1 ? '' : 's'}${rows.length > max ? `, first ${max}` : ''}`);
  for (const row of rows.slice(0, max)) {
    const where = `${String(row.error_source ?? '').replace(/^examples\//, '')}:${row.error_line ?? '?'}`;
    out(`  ${where.padEnd(18)} ${clip(String(row.app_user_id ?? ''), 16).padEnd(16)} ${clip(describe(row), 100)}`);
  }
}

function explain({ runId, code, reportDir, sandboxUrl, stats, sharedRedisUrl }) {
  const rel = `reports/${runId}/`;
  step('What just happened');
  out(`Report: ${rel}  (summary.json, succeeded.csv, failed.csv, rejected.csv, duplicates.csv, conflicts.csv, report.html)`);
  out('The sample data is made to show every outcome, so not every row can succeed:');
  out('  - rejected at ingest, before any request (rejected.csv): a currency that is not ISO 4217, blocklisted or');
  out('    malformed App User IDs ("guest", "team/…"), fields the row\'s store does not accept (payment_mode on');
  out('    Android), a missing product_id or store_user_id;');
  out("  - refused by the sandbox's stores (failed.csv): tokens marked sbx-invalid, sbx-inuse, …, and receipts");
  out('    accepted but not found on the subscriber afterwards (sbx-noproduct, sbx-transfer);');
  out('  - a repeated row (duplicates.csv) is sent once; sbx-flaky2 tokens and the injected 5xx faults are retried;');
  out(`  - rows holding only an Apple transaction id (${TRANSACTION_IDS}) are looked up in the sandbox's`);
  out('    App Store Server API with the App Store Connect key it generated (the APPLE_* variables), and each signed');
  out("    transaction is posted as the row's receipt;");
  out("  - a receipt that is also another user's (conflicts.csv: user-0025 holds user-0002's token, a shared device");
  out('    or a bad join in an export) is held, not sent: RevenueCat would move the purchase to the later user. Check');
  out('    it, fix the export, or send such rows anyway with --on-conflict send.');
  if (code === EXIT.ROWS_FAILED) out('So exit code 1 ("some rows failed or were rejected") is the expected result of this demo.');
  else if (code === EXIT.OK) out('Exit code 0: every row succeeded, which the sample data is not supposed to allow. Was examples/ changed?');
  else out(`Exit code ${code} is NOT what this demo expects (1): see the messages above.`);

  out();
  const looked = readCsv(join(reportDir, 'succeeded.csv'))
    ?.filter((r) => r.source === TRANSACTION_IDS)
    .sort((a, b) => Number(a.line) - Number(b.line));
  const given = readCsv(join(ROOT, TRANSACTION_IDS))?.length ?? 0;
  if (looked) {
    out(`transaction ids: ${looked.length} of ${given} looked up and imported (succeeded.csv)`);
    for (const r of looked)
      out(`  ${`${r.source.replace(/^examples\//, '')}:${r.line}`.padEnd(22)} ${clip(String(r.app_user_id ?? ''), 16).padEnd(16)} ${r.product_id || '-'}: HTTP ${r.http_status}`);
  }
  printRows('failed.csv', readCsv(join(reportDir, 'failed.csv')), (r) => `${r.error_reason}: ${r.error_message}`);
  printRows('rejected.csv', readCsv(join(reportDir, 'rejected.csv')), (r) => r.error_reason);
  printRows(
    'conflicts.csv',
    readCsv(join(reportDir, 'conflicts.csv'))?.map((r) => ({ ...r, error_source: r.source, error_line: r.line })),
    (r) => `${r.action}: token ${r.token} is ${r.other_app_user_id}'s (line ${r.other_line})`,
  );

  out();
  if (stats) {
    out(`Sandbox stats (${sandboxUrl}/_sandbox/stats):`);
    out(`  requests       ${String(stats.requests).padStart(4)}   API requests it received, retries included`);
    out(`  overlaps       ${String(stats.overlaps).padStart(4)}   requests for a user while another for that user was in flight (should be 0)`);
    out(`  flagsNotFalse  ${String(stats.flagsNotFalse).padStart(4)}   requests that could fire events or move last_seen (should be 0)`);
    if (stats.faults) out(`  5xx injected   ${String(stats.faults['5xx']).padStart(4)}   answered with a fault on purpose, then retried`);
    if (typeof stats.rateLimited === 'number') out(`  rate limited   ${String(stats.rateLimited).padStart(4)}   429 answers (the client keeps under --rate)`);
    const api = stats.appStoreServerApi;
    if (api) out(`  apple lookups  ${String(api.found).padStart(4)}   signed transactions the App Store Server API stand-in answered`);
  } else {
    out(`Sandbox stats: ${sandboxUrl}/_sandbox/stats did not answer`);
  }

  if (sharedRedisUrl) {
    out();
    out(`The run's keys stay in ${redact(sharedRedisUrl)} under the prefix "${PREFIX}:" (a real migration's are not touched).`);
    out(`  rewrite the report:  node dist/cli.js report --run-id ${runId} --prefix ${PREFIX}`);
    out(`  remove the keys:     redis-cli -u ${redact(sharedRedisUrl)} --scan --pattern '${PREFIX}:*' | xargs redis-cli -u ${redact(sharedRedisUrl)} unlink`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Main, signals and the way out

let sandbox;
let privateRedis;
/** The demo's temporary directory (the sandbox's generated .p8): removed on the way out. */
let keyDir;
let runChild;
let finishing;

async function stopAll() {
  if (sandbox && alive(sandbox.child)) {
    await stopChild(sandbox.child);
    out('stopped the sandbox');
  }
  if (privateRedis && alive(privateRedis.child)) {
    await stopChild(privateRedis.child);
    out(`stopped the private Redis (${privateRedis.url})`);
  }
  for (const child of children) await stopChild(child);
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
}

function finish(code) {
  finishing ??= (async () => {
    try {
      await stopAll();
    } finally {
      process.exit(code);
    }
  })();
  return finishing;
}

const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    signals++;
    if (runChild && alive(runChild)) {
      // The run finishes its requests in flight and writes a partial report (exit 4); a second signal stops it
      // at once. The demo then stops the sandbox and Redis and exits with the run's code.
      runChild.kill(sig === 'SIGHUP' ? 'SIGTERM' : sig);
      return;
    }
    if (signals > 1 && finishing) process.exit(SIGNAL_EXIT[sig]); // stuck on the way out: the exit hook kills the rest
    err(`\n${sig}: stopping the demo`);
    void finish(SIGNAL_EXIT[sig]);
  });
}

function childEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(RC_MIGRATE_|REVENUECAT_|APPLE_)/.test(k) || k === 'APP_STORE_SERVER_API_URL' || k === 'LOG_LEVEL' || k === 'REDIS_URL') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function timestamp(now = new Date()) {
  // demo-20261121-055807-123: sorts by time, unique enough for one machine
  const iso = now.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}-${iso.slice(20, 23)}`;
}

async function main() {
  process.chdir(ROOT);
  if (!existsSync(join(ROOT, CLI))) throw new DemoError(`${CLI} is missing: build first (npm run build), or use npm run demo`);
  if (!/^[A-Za-z0-9_{}.-]+$/.test(PREFIX)) throw new DemoError(`RC_MIGRATE_DEMO_PREFIX "${PREFIX}" may hold letters, digits, _ . - { } only`);

  step('Redis');
  const wanted = process.env.REDIS_URL?.trim() || DEFAULT_REDIS_URL;
  if (!/^rediss?:\/\//.test(wanted)) throw new DemoError(`REDIS_URL must be a redis:// or rediss:// URL, e.g. ${DEFAULT_REDIS_URL}`);
  let redisUrl = wanted;
  const probe = await probeRedis(wanted);
  if (probe === 'ok') {
    out(`using the Redis at ${redact(wanted)} (keys under the prefix "${PREFIX}:")`);
  } else if (probe !== 'down') {
    throw new DemoError(
      `the Redis at ${redact(wanted)} answered with an error: ${probe.message}\nfix REDIS_URL (a password goes in it: redis://:password@host:6379) and try again`,
    );
  } else {
    const redisServer = onPath('redis-server');
    if (!redisServer) {
      printHowToGetRedis(wanted);
      return EXIT.CONFIG;
    }
    out(`nothing answers at ${redact(wanted)}: starting a private redis-server for the demo (stopped at the end)`);
    privateRedis = await startPrivateRedis(redisServer);
    redisUrl = privateRedis.url;
    out(`private Redis: ${redisUrl}`);
  }

  step('RevenueCat sandbox (a stand-in for api.revenuecat.com: rate limit 25/s, 40-80 ms latency, 5% injected 5xx; and for the App Store Server API)');
  keyDir = mkdtempSync(join(tmpdir(), 'rc-migrate-demo-'));
  sandbox = await startSandbox(childEnv({}), join(keyDir, 'AuthKey_SBXKEY0001.p8'));
  out(`sandbox: ${sandbox.url}`);

  const runId = `demo-${timestamp()}`;
  // The App Store Connect API key the sandbox generated (never a real one): the variables a team sets for its own.
  const env = { REDIS_URL: redisUrl, REVENUECAT_API_URL: sandbox.url, REVENUECAT_API_KEY: SANDBOX_KEY, RC_MIGRATE_PREFIX: PREFIX, LOG_LEVEL: 'warn', ...sandbox.apple };
  const shownEnv = (vars) =>
    Object.entries(vars)
      .map(([k, v]) => `${k}=${k === 'REDIS_URL' ? redact(v) : v}`)
      .join(' ');

  // The plan needs no API key: it reads, checks and counts, and sends nothing.
  const planEnv = Object.fromEntries(Object.entries(env).filter(([k]) => k !== 'REVENUECAT_API_KEY'));
  const planArgs = [CLI, 'plan', ...SOURCES, '--platform', 'android', '--rate', '20', '--out', `reports/${runId}/plan`];
  step('Plan: what the run will do, before anything is sent');
  out(`$ ${shownEnv(planEnv)} \\`);
  out(`    node ${planArgs.join(' ')}`);
  const planChild = spawnChild(process.execPath, planArgs, { stdio: 'inherit', env: childEnv(planEnv) });
  const planned = await planChild.exited;
  if (planned.error) throw new DemoError(`could not start the plan: ${planned.error.message}`, EXIT.INTERNAL);
  out(`(exit code ${planned.code}: 1 says some rows are rejected or share a token; see reports/${runId}/plan/)`);

  const args = [CLI, 'run', ...SOURCES, '--platform', 'android', '--rate', '20', '--run-id', runId];
  step(`Migration run ${runId}`);
  out(`run id: ${runId}`);
  out(`$ ${shownEnv(env)} \\`);
  out(`    node ${args.join(' ')}`);
  runChild = spawnChild(process.execPath, args, { stdio: 'inherit', env: childEnv(env) });
  const { code, signal, error } = await runChild.exited;
  if (error) throw new DemoError(`could not start the run: ${error.message}`, EXIT.INTERNAL);
  const runCode = code ?? 128 + (osConstants.signals[signal] ?? 0);
  out(`(exit code ${runCode})`);

  if (signals > 0) {
    out(`interrupted: the partial report is in reports/${runId}/`);
    return runCode;
  }
  const stats = await sandboxStats(sandbox.url);
  explain({ runId, code: runCode, reportDir: join(ROOT, 'reports', runId), sandboxUrl: sandbox.url, stats, sharedRedisUrl: privateRedis ? undefined : redisUrl });
  out();
  return runCode;
}

try {
  const code = await main();
  await finish(code);
} catch (error) {
  err(`demo: ${error instanceof DemoError ? error.message : (error?.stack ?? String(error))}`);
  await finish(error instanceof DemoError ? error.code : EXIT.INTERNAL);
}
