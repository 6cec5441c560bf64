#!/usr/bin/env node
// `npm run soak` (= npm run build && node bench/scenarios/soak.mjs): a migration under the crashes a long run
// meets, checked row by row against the truth the sandbox holds. Not a timed test: it prints figures.
//
//   - a private redis-server (AOF, appendfsync always: lib/private-redis.mjs), a sandbox child with 3% 5xx
//     faults (seeded) and some latency, so that requests are truly in flight when a worker dies;
//   - `rc-migrate ingest` with a high-water mark (so it runs through the first part of the run), SIGKILLed once
//     when a quarter of the rows are queued, then the same command run again (it resumes the run);
//   - three `rc-migrate work` processes; every --kill-every seconds one of them (in turn) is SIGKILLed and
//     started again;
//   - Redis SIGKILLed once, when half the rows have an outcome, and started again from its append-only file;
//   - then the same rows again without any fault (no 5xx, no kill) for the time it takes.
//
// The truth: every token of the CSV is valid (the sandbox accepts it), so every row must succeed, except a row
// whose 5xx faults exhausted its attempts (`failed by faults`), and the poison row (--poison, test-only: a token
// that kills every worker that sends it, see src/workers/testPoison.ts), which must end as `poison_row`. It prints:
//   falsely failed  rows failed for any other reason (should be 0)
//   lost            rows without an outcome (should be 0)
//   sent twice      receipts the sandbox imported twice (POSTs per token: a request in flight at a kill whose
//                   answer never reached the ledger), bounded by kills × concurrency
//   kills           SIGKILLs of workers (scheduled, plus the poison row's), of the ingester and of Redis
//   time            against the same run without faults
// and exits 1 when a row was falsely failed or lost, or the bound on rows sent twice is broken.
//
// usage: node bench/scenarios/soak.mjs [--rows N] [--rate R] [--kill-every S] [--concurrency N] [--poison]
//          [--no-baseline] [--json FILE]
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { alive, spawnCli, startSandboxLibrary, stopAllChildren, stopChild } from '../lib/children.mjs';
import { loadDist } from '../lib/pipeline.mjs';
import { startPrivateRedis } from '../lib/private-redis.mjs';
import { openRedis } from '../lib/redis.mjs';
import { ROOT, SANDBOX_KEY, duration, log, num, round, sleep, useDist } from '../lib/util.mjs';

export const SOAK_USAGE = `usage: node bench/scenarios/soak.mjs [options]   (npm run soak -- [options])

  --rows N          rows of the run (default 200,000)
  --rate R          the workers' --rate, requests/s across all three (default 300)
  --kill-every S    seconds between SIGKILLs of a worker (default 15)
  --concurrency N   requests in flight per worker process (default 16)
  --lock-ms MS      the workers' job lock (RC_MIGRATE_LOCK_DURATION_MS; the stalled check runs every half of it):
                    how soon a killed worker's rows come back (default 10000; the tool's default is 30000)
  --poison          add one row whose token kills every worker that sends it (test-only hook: NODE_ENV=test and
                    RC_MIGRATE_TEST_POISON_TOKEN in the workers' environment); it must end as poison_row
  --no-baseline     skip the run without faults
  --json FILE       also write the figures as JSON`;

const WORKERS = 3;
const PREFIX = 'soak';
const FAULT_5XX = 0.03;
const LATENCY_MS = 20;
const MAX_ATTEMPTS = 8;
/** The workers' request timeout, and their users' lock (longer than any request). */
const TIMEOUT_MS = 5_000;
const USER_LOCK_MS = 10_000;
/** Rows per app_user_id; one user has many more (a heavy user waits for its own lock most). */
const ROWS_PER_USER = 2;
const HEAVY_USER_ROWS = 200;

export function parseSoakArgs(argv) {
  const opts = { rows: 200_000, rate: 300, killEverySeconds: 15, concurrency: 16, lockMs: 10_000, poison: false, baseline: true, json: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const positive = (v) => {
      const n = Number(v);
      if (!(n > 0)) throw new Error(`${arg} must be a positive number`);
      return n;
    };
    if (arg === '--rows') opts.rows = Math.round(positive(value()));
    else if (arg === '--rate') opts.rate = positive(value());
    else if (arg === '--kill-every') opts.killEverySeconds = positive(value());
    else if (arg === '--concurrency') opts.concurrency = Math.round(positive(value()));
    else if (arg === '--lock-ms') opts.lockMs = Math.round(positive(value()));
    else if (arg === '--poison') opts.poison = true;
    else if (arg === '--no-baseline') opts.baseline = false;
    else if (arg === '--json') opts.json = value();
    else if (arg === '-h' || arg === '--help') opts.help = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  return opts;
}

const tokenOf = (i) => `soak${String(i).padStart(8, '0')}abcdefghijklmnopqrstuvwxyz0123456789`;
const POISON_TOKEN = 'soakpoison00000000abcdefghijklmnopqrstuvwxyz0123456789';

/** The CSV and its truth: line → {user, token}. Row i is on line i + 2; the poison row (if any) is the middle one. */
async function writeRows(dir, rows, poison) {
  const lines = ['platform,app_user_id,fetch_token'];
  const truth = new Map();
  const heavy = Math.min(HEAVY_USER_ROWS, Math.floor(rows / 10));
  const poisonAt = poison ? Math.floor(rows / 2) : -1;
  for (let i = 0; i < rows; i++) {
    const user = i % 10 === 0 && i / 10 < heavy ? 'heavy-user' : `user-${Math.floor(i / ROWS_PER_USER)}`;
    const token = i === poisonAt ? POISON_TOKEN : tokenOf(i);
    lines.push(`ios,${user},${token}`);
    truth.set(i + 2, { user, token, poison: i === poisonAt });
  }
  const file = join(dir, 'soak.csv');
  await writeFile(file, `${lines.join('\n')}\n`);
  return { file, truth };
}

/** One run: with faults (5xx, kills, ingester kill, Redis restart) or without. */
async function runOnce(opts, { file, truth, faults, lib, dir }) {
  const rows = truth.size;
  const redis = await startPrivateRedis();
  const sandbox = await startSandboxLibrary(
    { latencyMs: LATENCY_MS, latencyJitterMs: LATENCY_MS / 2, fault5xxRate: faults ? FAULT_5XX : 0, seed: 19 },
    { heapMb: rows > 300_000 ? 8192 : undefined },
  );
  const conn = await openRedis(redis.url);
  conn.options.retryStrategy = () => 200; // through the Redis restart
  const runId = faults ? 'soak' : 'soak-baseline';
  const ledger = new lib.RunLedger(conn, PREFIX, runId);
  const hwm = Math.max(1000, Math.round(rows / 10));
  const env = {
    REDIS_URL: redis.url,
    RC_MIGRATE_PREFIX: PREFIX,
    REVENUECAT_API_URL: sandbox.url,
    REVENUECAT_API_KEY: SANDBOX_KEY,
    RC_MIGRATE_RATE: String(opts.rate),
    RC_MIGRATE_CONCURRENCY: String(opts.concurrency),
    RC_MIGRATE_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    RC_MIGRATE_TIMEOUT_MS: String(TIMEOUT_MS),
    RC_MIGRATE_LOCK_DURATION_MS: String(opts.lockMs),
    RC_MIGRATE_STALLED_INTERVAL_MS: String(Math.ceil(opts.lockMs / 2)),
    RC_MIGRATE_USER_LOCK_MS: String(USER_LOCK_MS),
    RC_MIGRATE_REPORT_DIR: join(dir, 'reports'),
    LOG_LEVEL: 'warn',
    // The test-only poison hook is armed only for --poison (and never outside NODE_ENV=test).
    NODE_ENV: faults && opts.poison ? 'test' : '',
    ...(faults && opts.poison ? { RC_MIGRATE_TEST_POISON_TOKEN: POISON_TOKEN } : {}),
  };
  const ingestArgs = ['ingest', file, '--run-id', runId, '--high-water-mark', String(hwm)];
  const figures = { rows, faults, kills: { workers: 0, poisonDeaths: 0, ingester: 0, redis: 0 }, workerStarts: 0, startFailures: 0, ingesterExits: [], unexpectedExits: [] };
  let stopping = false;
  // When the last worker died (a scheduled SIGKILL, or the poison row's): a killed worker's heartbeat outlives it
  // by up to its ttl, and every beat it wrote is older than its death.
  let lastDeathAt = 0;

  // Rows active (BullMQ's active list, every worker's) right after each worker's death and right before Redis's:
  // a receipt imported twice must be one of them. A dead worker's rows stay in the list until their lock expires.
  const activeAtKill = new Set();
  const activeAtRedis = new Set();
  const noteActive = async (into) => {
    const ids = await conn.lrange(`${PREFIX}:receipts:active`, 0, -1).catch(() => []);
    for (const id of ids) if (id.startsWith(`${runId}.`)) into.add(id.slice(runId.length + 1));
  };

  // Workers: a slot each, started again whenever it exits (a scheduled kill, or the poison row killing it).
  const workers = [];
  const scheduled = new WeakSet();
  const startWorker = (slot) => {
    const child = spawnCli(['work'], { env, name: `worker ${slot + 1}` });
    figures.workerStarts++;
    workers[slot] = child;
    void child.exited.then(({ code, signal }) => {
      if (stopping) return;
      if (scheduled.has(child)) return; // the killer starts it again itself
      if (signal === 'SIGKILL') {
        figures.kills.poisonDeaths++;
        lastDeathAt = Date.now();
        void noteActive(activeAtKill);
      }
      // A worker started just before Redis was killed stops at once (exit 2, as it does at start without Redis):
      // a supervisor starts it again, as here.
      else if (code === 2 && child.stderrLines.some((l) => l.includes('cannot reach Redis'))) figures.startFailures++;
      else figures.unexpectedExits.push(`${child.name}: code ${code} signal ${signal}: ${child.stderrLines.slice(-3).join(' | ')}`);
      if (!stopping) startWorker(slot);
    });
  };

  const started = Date.now();
  let ingester = spawnCli(ingestArgs, { env, name: 'rc-migrate ingest' });
  for (let slot = 0; slot < WORKERS; slot++) startWorker(slot);

  const state = async () => {
    try {
      return await ledger.state();
    } catch {
      return undefined;
    }
  };
  const timeoutMs = Math.max(600_000, (rows / opts.rate) * 4000);
  let ingestKilled = !faults;
  let redisRestarted = !faults;
  let nextKill = started + opts.killEverySeconds * 1000;
  let victim = 0;
  let last;
  let lastLog = 0;
  for (;;) {
    if (Date.now() - started > timeoutMs) throw new Error(`soak: not complete after ${duration(timeoutMs)}: ${JSON.stringify(last)}`);
    const s = await state();
    if (s) last = s;
    if (s?.complete) break;
    if (s && !ingestKilled && s.rows_queued >= rows / 4 && alive(ingester)) {
      ingestKilled = true;
      ingester.kill('SIGKILL');
      await ingester.exited;
      figures.kills.ingester++;
      figures.ingesterKilledAtQueued = s.rows_queued;
      log(`soak: ingester SIGKILLed at ${num(s.rows_queued)} rows queued; running the same ingest command again`);
      ingester = spawnCli(ingestArgs, { env, name: 'rc-migrate ingest (again)' });
    }
    // An ingester that stopped on its own before its rows were all queued (e.g. through the Redis restart) is run
    // again, as an operator or a supervisor would: its exit and last words are kept for the figures.
    if (s && ingestKilled && s.ingest !== 'done' && !alive(ingester)) {
      const { code, signal } = await ingester.exited;
      if (code !== 0) {
        const said = ingester.stderrLines.filter((l) => l.trim() !== '' && !/^\s+at /.test(l)).slice(-2);
        figures.ingesterExits.push(`code ${code} signal ${signal}: ${said.join(' | ')}`);
        log(`soak: the ingester stopped (code ${code}); running the same ingest command again`);
        ingester = spawnCli(ingestArgs, { env, name: 'rc-migrate ingest (again)' });
      }
    }
    const done = s ? s.rows_succeeded + s.rows_failed : 0;
    if (s && !redisRestarted && done >= rows / 2) {
      redisRestarted = true;
      figures.redisKilledAtOutcomes = done;
      log(`soak: Redis SIGKILLed at ${num(done)} outcomes; restarting it from its append-only file`);
      await noteActive(activeAtRedis);
      await redis.kill();
      figures.kills.redis++;
      await sleep(1000);
      const t = Date.now();
      await redis.start();
      figures.redisReloadMs = Date.now() - t;
      // Again from the AOF: rows that became active between the first look and the kill.
      await noteActive(activeAtRedis);
    }
    if (faults && Date.now() >= nextKill) {
      nextKill += opts.killEverySeconds * 1000;
      const slot = victim++ % WORKERS;
      const child = workers[slot];
      if (alive(child)) {
        scheduled.add(child);
        lastDeathAt = Date.now();
        child.kill('SIGKILL');
        await child.exited;
        await noteActive(activeAtKill);
        figures.kills.workers++;
        startWorker(slot);
      }
    }
    if (s && Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      log(
        `soak${faults ? '' : ' (no faults)'}: ${num(s.rows_succeeded)} succeeded, ${num(s.rows_failed)} failed of ${num(rows)}; kills ${figures.kills.workers} + ${figures.kills.poisonDeaths} (poison)`,
      );
    }
    await sleep(200);
  }
  figures.wallMs = Date.now() - started;
  stopping = true;
  await Promise.all(workers.map((w) => stopChild(w, { signal: 'SIGTERM', graceMs: 40_000 })));
  const ingestExit = await ingester.exited;
  figures.ingestExit = ingestExit.code;

  // Every outcome against the truth.
  const outcomes = new Map();
  for await (const o of ledger.outcomes()) outcomes.set(o.line, o);
  const posts = await fetch(`${sandbox.url}/_sandbox/receipt-posts`).then((r) => r.json());
  const postsOf = new Map(posts.receipts.map((p) => [p.fetch_token, p]));
  const stats = await sandbox.stats();
  let succeeded = 0;
  let failedByFaults = 0;
  const falselyFailed = [];
  let lost = 0;
  let sentTwice = 0;
  const sentTwiceActiveAt = { workerDeath: 0, redisRestart: 0, neither: 0 };
  let poison;
  for (const [line, row] of truth) {
    const o = outcomes.get(line);
    const p = postsOf.get(row.token);
    if ((p?.successes ?? 0) >= 2) {
      sentTwice++;
      if (o && activeAtKill.has(o.fp)) sentTwiceActiveAt.workerDeath++;
      else if (o && activeAtRedis.has(o.fp)) sentTwiceActiveAt.redisRestart++;
      else sentTwiceActiveAt.neither++;
    }
    if (row.poison) {
      poison = { status: o?.status, reason: o?.reason, message: o?.message, posts: p?.posts ?? 0 };
      continue;
    }
    if (!o) lost++;
    else if (o.status === 'succeeded') succeeded++;
    else if ((o.http_status ?? 0) >= 500 && (o.attempts ?? 0) >= MAX_ATTEMPTS) failedByFaults++;
    else falselyFailed.push({ line, reason: o.reason, message: o.message });
  }
  const extraPosts = stats.receiptPosts.total - stats.receiptPosts.distinct;
  const queue = await conn.llen(`${PREFIX}:receipts:active`);
  const leftKeys = { inFlight: (await conn.keys(`${PREFIX}:flight:*`)).length, ...(await leftBeats(conn, lastDeathAt)) };
  Object.assign(figures, {
    succeeded,
    failedByFaults,
    falselyFailed: falselyFailed.length,
    falselyFailedExamples: falselyFailed.slice(0, 5),
    lost,
    sentTwice,
    sentTwiceActiveAt,
    // Each worker's death: its rows in flight (≤ concurrency). Redis's: every worker's rows in flight, whose
    // answers' writes and BullMQ's job completions died with the connection.
    sentTwiceBound: (figures.kills.workers + figures.kills.poisonDeaths + figures.kills.redis * WORKERS) * opts.concurrency,
    extraPosts,
    faults5xx: stats.faults['5xx'],
    overlaps: stats.overlaps,
    poison,
    activeLeft: queue,
    leftKeys,
  });
  await stopChild(sandbox.child, { signal: 'SIGTERM', graceMs: 5000 });
  conn.disconnect();
  await redis.stop();
  return figures;
}

/**
 * The worker heartbeats left after every worker stopped. `workers`: of a worker stopped cleanly, which must have
 * removed its own (a beat written after the last death). `ofKilled`: of a worker killed near the end, whose
 * heartbeat is left to expire on its own within its ttl (the worker found dead by the next sender of its rows);
 * each must have that ttl, or it would stay for good.
 */
async function leftBeats(conn, lastDeathAt) {
  let workers = 0;
  let ofKilled = 0;
  for (const key of await conn.keys(`${PREFIX}:worker:*`)) {
    const [beat, pttl] = await Promise.all([conn.get(key), conn.pttl(key)]);
    if (beat === null) continue; // expired between the two reads
    if (Number(beat) <= lastDeathAt && pttl > 0) ofKilled++;
    else workers++;
  }
  return { workers, ofKilled };
}

export async function soak(opts) {
  const dir = await mkdtemp(join(tmpdir(), 'rcm-soak-'));
  // A private copy of the build (as bench.mjs takes): workers are started again all run long, and a rebuild of
  // dist/ meanwhile must not mix two builds in one run. Inside the repository, so node_modules resolves.
  const snapshot = join(ROOT, 'bench', `.snapshot-soak-${Date.now().toString(36)}`);
  await cp(join(ROOT, 'dist'), join(snapshot, 'dist'), { recursive: true });
  await cp(join(ROOT, 'config'), join(snapshot, 'config'), { recursive: true });
  useDist(join(snapshot, 'dist'));
  try {
    const lib = await loadDist();
    const { file, truth } = await writeRows(dir, opts.rows, opts.poison);
    const load = loadavg().map((l) => round(l, 2));
    log(
      `soak: ${num(opts.rows)} rows, ${WORKERS} workers at --rate ${opts.rate} --concurrency ${opts.concurrency}, a worker SIGKILLed every ${opts.killEverySeconds} s, ${FAULT_5XX * 100}% 5xx${opts.poison ? ', one poison row' : ''}`,
    );
    const faulted = await runOnce(opts, { file, truth, faults: true, lib, dir });
    let baseline;
    if (opts.baseline) {
      log('soak: the same rows without faults');
      baseline = await runOnce({ ...opts, poison: false }, { file, truth, faults: false, lib, dir });
    }
    return {
      command: `node bench/scenarios/soak.mjs ${process.argv.slice(2).join(' ')}`.trim(),
      rows: opts.rows,
      rate: opts.rate,
      concurrency: opts.concurrency,
      killEverySeconds: opts.killEverySeconds,
      lockMs: opts.lockMs,
      loadavgAtStart: load,
      loadavgAtEnd: loadavg().map((l) => round(l, 2)),
      faulted,
      baseline: baseline ? { wallMs: baseline.wallMs, succeeded: baseline.succeeded, lost: baseline.lost, falselyFailed: baseline.falselyFailed } : undefined,
      timeRatio: baseline ? round(faulted.wallMs / baseline.wallMs, 2) : undefined,
    };
  } finally {
    await stopAllChildren().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    await rm(snapshot, { recursive: true, force: true });
  }
}

/** The exit verdict: 0 rows falsely failed, 0 lost, rows sent twice within kills × concurrency, the poison row poison_row. */
export function soakOk(result, opts) {
  const f = result.faulted;
  const poisonOk = !opts.poison || (f.poison?.reason === 'poison_row' && f.poison.posts === 0);
  return f.falselyFailed === 0 && f.lost === 0 && f.sentTwice <= f.sentTwiceBound && f.sentTwiceActiveAt.neither === 0 && poisonOk && f.unexpectedExits.length === 0;
}

function print(result, opts) {
  const f = result.faulted;
  const lines = [
    '',
    `soak: ${num(result.rows)} rows, 3 workers, --rate ${result.rate}, concurrency ${result.concurrency}, job lock ${result.lockMs} ms, 3% 5xx, a worker SIGKILLed every ${result.killEverySeconds} s`,
    `  rows falsely failed   ${num(f.falselyFailed)}${f.falselyFailed ? `  e.g. ${JSON.stringify(f.falselyFailedExamples)}` : ''}`,
    `  rows lost             ${num(f.lost)}`,
    `  rows sent twice       ${num(f.sentTwice)}: active at a worker's death ${num(f.sentTwiceActiveAt.workerDeath)}, at Redis's ${num(f.sentTwiceActiveAt.redisRestart)}, neither ${num(f.sentTwiceActiveAt.neither)} (bound: (worker deaths + Redis restarts × ${WORKERS} workers) × concurrency = ${num(f.sentTwiceBound)})`,
    `                        POSTs beyond one per receipt ${num(f.extraPosts)}, of which 5xx faults retried ${num(f.faults5xx)}`,
    `  succeeded             ${num(f.succeeded)}; failed by the faults (5xx on every attempt) ${num(f.failedByFaults)}`,
    `  worker processes      ${f.workerStarts} started (${f.startFailures} of them stopped at start: Redis was down)`,
    `  kills                 workers ${f.kills.workers} (SIGKILL every ${result.killEverySeconds} s)${opts.poison ? ` + ${f.kills.poisonDeaths} by the poison row` : ''}, ingester ${f.kills.ingester} (at ${num(f.ingesterKilledAtQueued)} queued, resumed), Redis ${f.kills.redis} (at ${num(f.redisKilledAtOutcomes)} outcomes, AOF reload ${num(f.redisReloadMs)} ms)`,
    ...(f.ingesterExits.length ? [`  ingester stopped     ${f.ingesterExits.join('; ')} (run again)`] : []),
    ...(opts.poison ? [`  poison row            ${f.poison?.status} ${f.poison?.reason}, POSTs ${f.poison?.posts}`] : []),
    `  left in Redis         ${f.activeLeft} active jobs, ${f.leftKeys.inFlight} in-flight row keys, ${f.leftKeys.workers} worker heartbeats (live: none, all stopped; ${f.leftKeys.ofKilled} of killed workers, expiring on their own)`,
    `  time                  ${duration(f.wallMs)}${result.baseline ? ` vs ${duration(result.baseline.wallMs)} without faults (×${result.timeRatio})` : ''}`,
    `  load average (1 min)  ${result.loadavgAtStart[0]} at start, ${result.loadavgAtEnd[0]} at end`,
    ...(f.unexpectedExits.length ? [`  UNEXPECTED EXITS      ${f.unexpectedExits.join('\n                        ')}`] : []),
    `  verdict               ${soakOk(result, opts) ? 'ok' : 'FAILED'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  let opts;
  try {
    opts = parseSoakArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`soak: ${err.message}\n${SOAK_USAGE}\n`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(`${SOAK_USAGE}\n`);
    process.exit(0);
  }
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => void stopAllChildren(2000).finally(() => process.exit(130)));
  try {
    const result = await soak(opts);
    print(result, opts);
    if (opts.json) await writeFile(opts.json, `${JSON.stringify(result, null, 2)}\n`);
    process.exit(soakOk(result, opts) ? 0 : 1);
  } catch (err) {
    process.stderr.write(`soak: ${err.stack ?? err}\n`);
    await stopAllChildren(2000).catch(() => undefined);
    process.exit(1);
  }
}
