#!/usr/bin/env node
// `npm run bench` (= npm run build && node bench/bench.mjs): performance figures of rc-migrate on this machine.
//
//   rate        2 workers at --rate 100 against a sandbox limited to 100/s with 50 ms latency: utilisation, 429s
//   ingest      1,000,000-row CSV: rc-migrate ingest vs raw BullMQ addBulk; the high-water mark holding
//   overhead    one worker, unlimited sandbox, realistic payloads: receipts/s vs a BullMQ worker with an empty
//               processor, and Redis round trips per row of each
//   ledger      Redis bytes per finished row (on the overhead run) and what the queue leaves behind; and on
//               200,000 rows of realistic payloads through the ledger alone (scenarios/ledger.mjs), by key family
//   sequential  one request at a time with a 1 s sleep, RevenueCat's sample-script way, projected to 20,000 rows
//   e2e         1,000,000 realistic rows: ingest + 2 workers + report against an unlimited sandbox; rows/s, peak
//               RSS per process, Redis peak and after per row, report time, projection to 10 M and 50 M rows
//   ingestReceipts  50,000 App Store rows of real signed receipts (3-12 KB) and signed transactions: `rc-migrate plan`
//               and `ingest` with receipt reading on and off (RC_MIGRATE_READ_RECEIPTS=0), on a private redis-server;
//               rows/s, the ratio, Redis per finished row with the purchase index apart
//   discovery   no --rate: limits of 10, 50, 200/s (one-second windows), 1,200/min (minute windows) and one that
//               halves and comes back; seconds to 90% of the limit, steady-state use, 429s, time vs ideal
//
// Not here: the soak (`npm run soak`, scenarios/soak.mjs), which kills workers, the ingester and its own Redis
// for minutes and checks every row against the sandbox's truth; it runs on its own.
//
// It prints figures and a table (scenario, figure, goal, met?) and writes bench/results/latest.json plus a
// timestamped copy. It asserts nothing about time: the exit code is 0 unless a scenario could not run.
// Redis keys are written only under bench-<id>-<scenario> prefixes and deleted (SCAN + UNLINK) after each
// scenario; children are stopped and temp files removed on every way out, Ctrl-C included.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { commandLog, startSandboxChild, stopAllChildren } from './lib/children.mjs';
import { loadDist } from './lib/pipeline.mjs';
import { deletePrefix, openRedis, scanKeys } from './lib/redis.mjs';
import { CLI, ROOT, USAGE, UsageError, duration, log, mib, num, parseArgs, round, size, useDist } from './lib/util.mjs';
import { ingestScenario } from './scenarios/ingest.mjs';
import { overheadScenario } from './scenarios/overhead.mjs';
import { ledgerScenario } from './scenarios/ledger.mjs';
import { RATE_SANDBOX_FLAGS, rateScenario } from './scenarios/rate.mjs';
import { sequentialScenario } from './scenarios/sequential.mjs';
import { INGESTER_RSS_GOAL, PROJECT_RATES, e2eScenario } from './scenarios/e2e.mjs';
import { GOAL_RATIO } from './scenarios/overhead.mjs';
import { discoveryScenario } from './scenarios/discovery.mjs';
import { GOAL_BYTES_PER_ROW, GOAL_RATIO as RECEIPTS_GOAL_RATIO, GOAL_ROWS_PER_SECOND, ingestReceiptsScenario } from './scenarios/ingestReceipts.mjs';

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`bench: ${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  throw err;
}
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const want = new Set(opts.only);
if (want.has('ledger')) want.add('overhead');
if (!existsSync(CLI)) {
  process.stderr.write('bench: dist/cli.js is missing: run `npm run build` first (or use `npm run bench`)\n');
  process.exit(2);
}

const commandLine = `node bench/bench.mjs${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
const id = Date.now().toString(36);
const prefixes = new Set();
let redis;
let tmp;
// A private copy of the build (dist/ + config/, which dist/config.js reads as ../config/default.json), inside
// the repository so node_modules resolves as from dist/: others rebuilding dist/ mid-run cannot mix builds.
const snapshot = join(ROOT, 'bench', `.snapshot-${id}`);

// ---------------------------------------------------------------------------------------------------------
// Cleanup on every way out.

let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    await stopAllChildren().catch(() => undefined);
    if (redis) {
      for (const prefix of prefixes) {
        const n = await deletePrefix(redis, prefix).catch(() => 0);
        if (n > 0) log(`cleanup: deleted ${n} keys under ${prefix}:`);
      }
      redis.disconnect();
    }
    if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    await rm(snapshot, { recursive: true, force: true }).catch(() => undefined);
  })();
  return cleaning;
}

let signalled = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (signalled) process.exit(130); // second signal: the exit handler SIGKILLs the children
    signalled = true;
    log(`${sig}: stopping children, deleting bench keys and temp files (send again to quit at once)`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------------------

function gitInfo() {
  const git = (...args) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  return { commit: git('rev-parse', '--short', 'HEAD'), modified: (git('status', '--porcelain', '--', 'src', 'config', 'package.json') ?? '').split('\n').filter(Boolean) };
}

async function main() {
  const git = gitInfo();
  await cp(join(ROOT, 'dist'), join(snapshot, 'dist'), { recursive: true });
  await cp(join(ROOT, 'config'), join(snapshot, 'config'), { recursive: true });
  useDist(join(snapshot, 'dist'));
  redis = await openRedis(opts.redisUrl).catch((err) => {
    throw new Error(`cannot reach Redis at ${opts.redisUrl} (${err.message}): start one or pass --redis`);
  });
  const redisVersion = /^redis_version:(\S+)/m.exec(await redis.info('server'))?.[1];
  const stale = await scanKeys(redis, 'bench-*', 5000);
  if (stale.length > 0) log(`note: ${stale.length} keys under bench-* already exist (another bench, or an interrupted one); they are left alone`);
  tmp = await mkdtemp(join(tmpdir(), 'rcm-bench-'));
  const lib = await loadDist();
  const ctx = {
    opts,
    scale: opts.scale,
    redisUrl: opts.redisUrl,
    redis,
    tmp,
    lib,
    newPrefix(name) {
      const prefix = `bench-${id}-${name}`;
      prefixes.add(prefix);
      return prefix;
    },
  };

  const results = {
    started_at: new Date().toISOString(),
    command: commandLine,
    via_npm: process.env.npm_lifecycle_event === 'bench',
    scale: opts.scale,
    only: [...want],
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memory: mib(totalmem()), node: process.version, redis: redisVersion, loadavgAtStart: loadavg().map((l) => round(l, 2)) },
    git,
    build: 'children and library calls run a copy of dist/ and config/ taken at start (git state above)',
    scenarios: {},
    errors: {},
  };

  const run = async (name, fn) => {
    log(`== ${name}`);
    const before = new Set(prefixes);
    const load = loadavg()[0];
    try {
      results.scenarios[name] = await fn();
      results.scenarios[name].loadavg1 = { before: round(load, 2), after: round(loadavg()[0], 2) };
    } catch (err) {
      results.errors[name] = err.stack ?? String(err);
      log(`${name} FAILED: ${err.message}`);
    } finally {
      for (const prefix of prefixes) {
        if (before.has(prefix)) continue;
        await deletePrefix(redis, prefix);
      }
    }
  };

  if (want.has('rate') || want.has('sequential')) {
    const sandbox = await startSandboxChild(RATE_SANDBOX_FLAGS);
    log(`rate sandbox at ${sandbox.url}`);
    try {
      if (want.has('rate')) await run('rate', () => rateScenario(ctx, sandbox));
      if (want.has('sequential')) await run('sequential', () => sequentialScenario(ctx, sandbox, results.scenarios.rate));
    } finally {
      await sandbox.stop();
    }
  }
  if (want.has('ingest')) await run('ingest', () => ingestScenario(ctx));
  if (want.has('overhead')) await run('overhead', () => overheadScenario(ctx));
  if (want.has('ledger')) await run('ledger', () => ledgerScenario(ctx));
  if (want.has('e2e')) await run('e2e', () => e2eScenario(ctx));
  if (want.has('discovery')) await run('discovery', () => discoveryScenario(ctx));
  if (want.has('ingestReceipts'))
    await run('ingestReceipts', () => ingestReceiptsScenario({ ...ctx, ...(opts.ingestReceiptsRows ? { ingestReceiptsRows: opts.ingestReceiptsRows } : {}) }));

  results.finished_at = new Date().toISOString();
  results.machine.loadavgAtEnd = loadavg().map((l) => round(l, 2));
  const counted = new Map();
  for (const c of commandLog.map((c) => c.replace(/bench-[a-z0-9]+-/g, 'bench-<id>-').replace(/\/tmp\/rcm-bench-\w+/g, '$TMP'))) counted.set(c, (counted.get(c) ?? 0) + 1);
  results.commands = [...counted].map(([c, n]) => (n > 1 ? `${c}   (×${n})` : c));
  results.table = table(results);

  const dir = join(ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const stamp = results.started_at.replace(/[:.]/g, '-');
  await writeFile(join(dir, 'latest.json'), json);
  await writeFile(join(dir, `${stamp}${opts.scale !== 1 ? `-scale${opts.scale}` : ''}.json`), json);

  printReport(results);
  process.stdout.write(`\nresults: bench/results/latest.json and bench/results/${stamp}${opts.scale !== 1 ? `-scale${opts.scale}` : ''}.json\n`);
  return Object.keys(results.errors).length > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------
// The table: scenario, figure, value, goal, met?

const pct = (x, d = 2) => (x === undefined ? 'n/a' : `${(x * 100).toFixed(d)}%`);
const yes = (ok) => (ok === undefined ? '' : ok ? 'yes' : 'NO');

function table(results) {
  const rows = [];
  const add = (scenario, figure, value, goal = '', met = undefined) => rows.push({ scenario, figure, value, goal, met: yes(met) });
  const s = results.scenarios;
  for (const [name, err] of Object.entries(results.errors)) add(name, 'ERROR', err.split('\n')[0], '', false);

  if (s.rate) {
    const r = s.rate;
    add('rate', `successful requests/s (${r.rows} rows, 2 workers --rate ${r.configuredRate}, ${r.order})`, `${r.achievedPerSecond}/s`, 'ledger first→last outcome');
    add('rate', 'utilisation (achieved / 100)', String(r.utilisation), '≥ 0.97', r.utilisation >= 0.97);
    add('rate', '429 share of POSTs', `${pct(r.rateLimitedShare)} (${r.rateLimited}/${r.postRequests})`, '≤ 0.5%', r.rateLimitedShare <= 0.005);
    add('rate', 'overlapping requests for one user', String(r.overlaps), '= 0', r.overlaps === 0);
    if (r.delayedSet) add('rate', 'rows put back because their user was busy (estimate)', `~${num(r.delayedSet.estimatedUserBusyEvents)} (delayed set max ${r.delayedSet.max})`);
    const l = r.requests?.latencyMs;
    if (l) add('rate', 'POST latency p50 / p95 (client side)', `${round(l.p50, 1)} / ${round(l.p95, 1)} ms`, 'sandbox adds 50 ms');
    add('rate', `time for ${num(r.rows)} rows (workers start → last outcome)`, duration(r.wallMs), `ideal ${duration(r.idealMs)}`);
  }
  if (s.ingest) {
    const i = s.ingest;
    if (i.a) {
      add('ingest', `(a) rc-migrate ingest, ${num(i.rows)} rows`, `${num(i.a.rowsPerSecond)} rows/s (${duration(i.a.wallMs)})`);
      add('ingest', '(a) ingester peak RSS / VmHWM', `${mib(i.a.peakRss)} / ${mib(i.a.vmHwm)}`);
      add('ingest', '(a) Redis used_memory peak (over baseline)', `${mib(i.a.redis.peak)} (+${mib(i.a.redis.peakOverBaseline)})`);
    }
    if (i.b) {
      add('ingest', '(b) raw Queue.addBulk (CSV parsed too)', `${num(i.b.rowsPerSecond)} rows/s (${duration(i.b.wallMs)})`);
      add('ingest', '(b) raw path peak RSS / Redis peak (over baseline)', `${mib(i.b.peakRss)} / +${mib(i.b.redis.peakOverBaseline)}`);
      add('ingest', 'ratio ingest / raw', String(i.ratio), '≥ 0.8', i.ratio >= 0.8);
    }
    if (i.c?.skipped) add('ingest', '(c) high-water mark', i.c.skipped);
    else if (i.c) {
      add(
        'ingest',
        `(c) rows waiting after ${i.c.runMs / 1000} s, --high-water-mark ${num(i.c.highWaterMark)}`,
        `${num(i.c.queued)} (ledger admitted ${num(i.c.ledgerQueued)})`,
        `≈ ${num(i.c.highWaterMark)}`,
        i.c.queued <= i.c.highWaterMark + 1000 && i.c.queued >= i.c.highWaterMark * 0.8,
      );
      add('ingest', '(c) Redis used_memory at that point (over baseline)', `${mib(i.c.redisUsedMemory)} (+${mib(i.c.redisOverBaseline)})`);
      add(
        'ingest',
        '(c) SIGINT → exit',
        `code ${i.c.sigint.exit.code ?? i.c.sigint.exit.signal} after ${i.c.sigint.exitMs} ms`,
        'prompt, code 4',
        i.c.sigint.exit.code === 4 && i.c.sigint.exitMs < 5000,
      );
    }
  }
  if (s.overhead) {
    const o = s.overhead;
    const rt = (r) =>
      r?.client?.roundTripsPerRow === undefined
        ? ''
        : `; Redis ${r.client.roundTripsPerRow} round trips, ${r.client.commandsPerRow} commands/row (server ${r.server?.commandsPerRow})`;
    if (o.payloads)
      add(
        'overhead',
        'payloads (lib/payloads.mjs)',
        `mean row ${num(o.payloads.meanRowBytes)} B; ${Object.entries(o.payloads.byPlatform)
          .map(([p, v]) => `${p} ${pct(v.rows / o.payloads.rows, 0)} (${num(v.meanTokenBytes)} B token)`)
          .join(', ')}; ${pct(o.payloads.refusedShare, 1)} refused`,
      );
    if (o.ours)
      add('overhead', `rc-migrate work, ${num(o.rows)} rows, concurrency 64`, `${num(o.ours.perSecond)} receipts/s (CPU ${o.ours.workerCpuMsPerRow} ms/row${rt(o.ours.redis)})`);
    if (o.empty) add('overhead', 'BullMQ empty processor, same jobs', `${num(o.empty.perSecond)} jobs/s (CPU ${o.empty.cpuMsPerJob} ms/job${rt(o.empty.redis)})`);
    if (o.ratio !== undefined) add('overhead', 'ratio ours / empty', String(o.ratio), `≥ ${GOAL_RATIO}`, o.ratio >= GOAL_RATIO);
    const scripts = o.ours?.redis?.client?.scriptsPerRow;
    if (scripts)
      add(
        'overhead',
        'scripts per row (rc-migrate work)',
        Object.entries(scripts)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none',
      );
    if (o.ledger) {
      const l = o.ledger;
      const parts = Object.entries(l.byShape)
        .map(([k, v]) => `${k} ${v.perRow}`)
        .join(', ');
      add(
        'ledger',
        `Redis bytes per finished row (${num(l.finishedRows)} rows, ${num(l.failedRows)} failed)`,
        `${l.bytesPerRow} B (${mib(l.ledgerBytes)})`,
        '≤ 150 B',
        l.bytesPerRow <= 150,
      );
      add('ledger', 'by key shape, B/row', parts);
      add(
        'ledger',
        "queue's leftover keys",
        `${l.queueLeftover.keys} keys, ${num(l.queueLeftover.bytes)} B (events stream ${l.queueLeftover.eventsStreamLength} entries)`,
        'no job left',
        l.queueLeftover.jobHashesLeft === 0,
      );
    }
  }
  if (s.ledger) {
    const l = s.ledger;
    for (const m of l.byFailedShare ?? [l]) {
      add(
        'ledger',
        `payloads: ${num(m.rows)} rows through RunLedger, ${Math.round(m.failedShare * 100)}% failed (3 KB incompressible receipts), Redis bytes per finished row`,
        `${m.bytesPerFinishedRow} B (run ${m.runLedgerPerRow} + index ${m.indexPerRow})`,
        '≤ 150 B',
        m.bytesPerFinishedRow <= 150,
      );
      add('ledger', `${Math.round(m.failedShare * 100)}% failed: per succeeded row / per failed row`, `${m.perSucceededRow} B / ${num(m.perFailedRow)} B`);
    }
    add(
      'ledger',
      'buckets (listpack limits 128 / 64)',
      `${num(l.buckets.count)}: ${JSON.stringify(l.buckets.encodings)}, fullest ${l.buckets.maxEntries}`,
      'all listpack',
      Object.keys(l.buckets.encodings).every((e) => e === 'listpack'),
    );
    add(
      'ledger',
      'script calls per finished row',
      Object.entries(l.callsPerRow ?? {})
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    );
    add('ledger', 'report from the ledger', `${l.reportSeconds} s`);
  }
  if (s.sequential) {
    const q = s.sequential;
    add('sequential', `${q.rows} rows, 1 at a time + 1 s sleep`, `${duration(q.totalMs)} (${q.perRowMs} ms/row)`);
    add('sequential', 'projected to 20,000 rows', duration(q.projected20kMs));
    if (q.pipeline20kMs !== undefined) {
      add(
        'sequential',
        `rc-migrate (scenario 1) for 20,000 rows${q.pipelineRows !== 20_000 ? ` (scaled from ${num(q.pipelineRows)})` : ''}`,
        duration(q.pipeline20kMs),
        `×${q.speedup} faster`,
      );
    }
  }
  if (s.e2e) {
    const e = s.e2e;
    const r = e.redis;
    add(
      'e2e',
      `payloads: ${num(e.rows)} rows, ${mib(e.payloads.bytes)} CSV`,
      `mean row ${num(e.payloads.meanRowBytes)} B; ${pct(e.payloads.refusedShare, 1)} refused by the store`,
    );
    add(
      'e2e',
      `rows/s, ingest + ${e.workers} workers (spawn → ledger complete)`,
      `${num(e.rowsPerSecond)} rows/s (${duration(e.wallMs)}; first→last outcome ${num(e.rowsPerSecondFirstToLastOutcome)}/s)`,
    );
    add('e2e', 'outcomes', `${num(e.ledger.succeeded)} succeeded, ${num(e.ledger.failed)} failed, ${num(e.ledger.rejected)} rejected`);
    add(
      'e2e',
      `ingester peak RSS (VmHWM), --high-water-mark ${num(e.highWaterMark)}`,
      mib(e.ingest.vmHwm),
      '≤ 150 MB',
      e.ingest.vmHwm !== undefined ? e.ingest.vmHwm <= INGESTER_RSS_GOAL : undefined,
    );
    e.workerProcesses.forEach((w, i) => add('e2e', `worker ${i + 1} peak RSS (VmHWM)`, `${mib(w.vmHwm)} (CPU ${round(w.cpuSeconds, 1)} s)`));
    add('e2e', `report: time, peak RSS (exit ${e.report.exit.code}: some rows failed, as planned)`, `${duration(e.report.ms)}, ${mib(e.report.vmHwm)}`);
    add('e2e', 'sandbox peak RSS (keeps every token it saw)', mib(e.sandboxProcess.vmHwm));
    add('e2e', `Redis peak over baseline (used_memory every ${r.samplingMs} ms)`, mib(r.peakOverBaseline));
    add(
      'e2e',
      'bound: hwm × mean CSV row + ledger',
      `${mib(r.bound.withRowBytes)} → peak/bound ${r.bound.peakOverBoundRowBytes}`,
      'peak ≤ bound',
      r.bound.peakOverBoundRowBytes <= 1,
    );
    if (r.bound.withJobBytes !== undefined)
      add(
        'e2e',
        `bound with the job's own size (${num(r.meanJobBytes)} B = ${r.jobBytesOverRowBytes} × row)`,
        `${mib(r.bound.withJobBytes)} → peak/bound ${r.bound.peakOverBoundJobBytes}`,
      );
    if (r.bound.withJobBytesAndSlack !== undefined)
      add(
        'e2e',
        `… plus one ingest chunk and the jobs in flight (${num(r.bound.slackJobs)} jobs)`,
        `${mib(r.bound.withJobBytesAndSlack)} → peak/bound ${r.bound.peakOverBoundWithSlack}`,
      );
    add('e2e', 'most rows waiting in the queue (sampled each second)', num(r.maxWaitingSampled), `≈ ${num(e.highWaterMark)}`);
    add('e2e', 'Redis after, per finished row: MEMORY USAGE of the run’s keys', `${r.ledgerPerFinishedRow} B (${mib(r.ledgerBytes)})`, '≤ 150 B', r.ledgerPerFinishedRow <= 150);
    add('e2e', 'Redis after, per finished row: used_memory after − before', `${r.usedMemoryPerFinishedRow} B`);
    add(
      'e2e',
      'by key shape, B/row',
      Object.entries(r.ledgerByShape)
        .map(([k, v]) => `${k} ${v.perRow}`)
        .join(', '),
    );
    const c = e.roundTrips?.client;
    if (c?.roundTripsPerRow !== undefined)
      add('e2e', 'workers: Redis round trips / commands per row', `${c.roundTripsPerRow} / ${c.commandsPerRow} (server commandstats ${e.roundTrips.server.commandsPerRow})`);
  }
  if (s.discovery) discoveryRows(s.discovery, add);
  if (s.ingestReceipts) {
    const r = s.ingestReceipts;
    const c = r.corpus;
    add(
      'ingestReceipts',
      `payloads: ${num(r.rows)} App Store rows, ${num(c.receipts)} receipts (mean ${num(c.receiptChars.mean)} chars), ${num(c.signedTransactions)} signed transactions`,
      `${num(c.superseded)} superseded, ${num(c.conflicts)} conflicts by purchase; checks ${Object.values(r.checks).every(Boolean) ? 'all true' : JSON.stringify(r.checks)}`,
    );
    for (const cmd of ['plan', 'ingest']) {
      const x = r[cmd];
      add(
        'ingestReceipts',
        `${cmd}: reading on (wall; per CPU s)`,
        `${num(x.on.rowsPerSecond)} rows/s; ${num(x.on.rowsPerCpuSecond)}`,
        `≥ ${num(GOAL_ROWS_PER_SECOND)}`,
        x.on.rowsPerSecond >= GOAL_ROWS_PER_SECOND,
      );
      add(
        'ingestReceipts',
        `${cmd}: reading on, survey in one thread (RC_MIGRATE_SURVEY_THREAD=0)`,
        `${num(x.one.rowsPerSecond)} rows/s; ${num(x.one.rowsPerCpuSecond)}; ratio ${x.ratioOneThread}`,
      );
      add('ingestReceipts', `${cmd}: reading off (RC_MIGRATE_READ_RECEIPTS=0)`, `${num(x.off.rowsPerSecond)} rows/s; ${num(x.off.rowsPerCpuSecond)}`);
      add('ingestReceipts', `${cmd}: ratio on / off (CPU)`, `${x.ratio} (${x.ratioCpu})`, `≥ ${RECEIPTS_GOAL_RATIO}`, x.ratio >= RECEIPTS_GOAL_RATIO);
    }
    const d = r.redis;
    if (d) {
      add(
        'ingestReceipts',
        `Redis per finished row (${num(d.finishedRows)} sent; every row read: ${d.bytesPerRowRead} B)`,
        `${d.bytesPerFinishedRow} B (run ${d.runLedgerPerFinishedRow} + token index ${d.tokenIndexPerFinishedRow} + purchase index ${d.purchaseIndex.perFinishedRow})`,
        `≤ ${GOAL_BYTES_PER_ROW} B`,
        d.bytesPerFinishedRow <= GOAL_BYTES_PER_ROW,
      );
      add(
        'ingestReceipts',
        'purchase index',
        `${num(d.purchaseIndex.entries)} entries × ${d.purchaseIndex.bytesPerEntry} B (${d.purchaseIndex.entriesPerSucceededRow} per succeeded row)`,
      );
    }
  }
  return rows;
}

/** The discovery scenario's figures, one group of rows per limit. */
function discoveryRows(d, add) {
  for (const [name, c] of Object.entries(d.cases)) {
    const label = `discovery ${name}`;
    add(label, `${c.label}: ${num(c.rows)} rows, no --rate`, `learned ${c.learned ? `${round(c.learned.rate, 1)}/s per ${c.learned.window}` : 'nothing'}`);
    add(
      label,
      'seconds until 90% of the limit',
      c.secondsTo90 === undefined ? 'never' : `${c.secondsTo90} s`,
      `≤ ${c.settleGoalS} s`,
      c.secondsTo90 !== undefined && c.secondsTo90 <= c.settleGoalS,
    );
    const goal = c.useGoal ?? 0.95;
    add(label, `steady-state use (from ${c.steadyFromS} s)`, String(c.steadyUse), `≥ ${goal}`, c.steadyUse >= goal);
    if (c.spread)
      add(
        label,
        'requests short of the limit per fixed 1-s window (sandbox admitted/s)',
        `median ${c.spread.shortMedian}, p5 ${c.spread.shortP5}, p95 ${c.spread.shortP95}, mean ${c.spread.shortMean} (sd ${c.spread.shortSd})`,
      );
    add(label, '429 share of POSTs', `${pct(c.share429)} (${c.rateLimited}/${c.posts})`, '≤ 1%', c.share429 <= 0.01);
    add(label, 'total time (workers start → run complete)', `${c.totalS} s`, `ideal ${c.idealS} s (×${c.timeVsIdeal})`);
    if (c.followDownS !== undefined || c.use?.halved !== undefined) {
      add(
        label,
        'halved limit followed (learned rate paced ≤ new limit)',
        c.followDownS === undefined ? 'never' : `${c.followDownS} s`,
        '≤ 10 s',
        c.followDownS !== undefined && c.followDownS <= 10,
      );
      add(label, 'restored limit: 90% again after', c.backUpS === undefined ? 'never' : `${c.backUpS} s`);
      add(
        label,
        'use before / halved / after',
        `${c.use.before} / ${c.use.halved} / ${c.use.after}`,
        '≥ 0.93 each',
        [c.use.before, c.use.halved, c.use.after].every((u) => u >= 0.93),
      );
    }
    for (const e of c.events ?? []) {
      const goalS = e.kind === 'fall' ? 10 : 30;
      add(
        label,
        `limit ${e.kind === 'fall' ? 'fell' : 'rose'} to ${e.limit}/s at ${e.at} s: ${e.kind === 'fall' ? 'paced under it' : '90% of it'} after (use till next, 429s)`,
        `${e.followS === undefined ? 'never' : `${e.followS} s`} (${e.use}, ${e.limited})`,
        `≤ ${goalS} s`,
        e.followS !== undefined && e.followS <= goalS,
      );
    }
  }
}

function projectionLines(e) {
  const head = ['rows', 'Redis after', 'Redis peak', ...PROJECT_RATES.map((r) => `at ${num(r)}/s`), `at this run's ${num(e.rowsPerSecond)}/s`, 'report'];
  const body = e.projection.map((p) => [
    num(p.rows),
    size(p.redisAfterBytes),
    size(p.redisPeakBytes),
    ...PROJECT_RATES.map((r) => duration(p.timeMsAt[r])),
    duration(p.timeMsAtThisRunsPace),
    duration(p.reportMs),
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) =>
    cells
      .map((c, i) => c.padEnd(width[i]))
      .join('  ')
      .trimEnd();
  return [
    '',
    `e2e projection (from ${num(e.rows)} rows: ${e.redis.ledgerPerFinishedRow} B/row after the run; peak = that + high-water mark ${num(e.highWaterMark)} × ${num(e.redis.meanJobBytes)} B per queued job; report time linear):`,
    line(head),
    width.map((w) => '-'.repeat(w)).join('  '),
    ...body.map(line),
  ];
}

function printReport(results) {
  const rows = results.table;
  const head = { scenario: 'scenario', figure: 'figure', value: 'value', goal: 'goal', met: 'met?' };
  const cols = Object.keys(head);
  const width = Object.fromEntries(cols.map((c) => [c, Math.max(head[c].length, ...rows.map((r) => String(r[c]).length))]));
  const line = (r) =>
    cols
      .map((c) => String(r[c]).padEnd(width[c]))
      .join('  ')
      .trimEnd();
  const out = [];
  out.push(
    '',
    `rc-migrate benchmark — ${results.started_at} — ${results.machine.cpus} CPUs, node ${results.machine.node}, redis ${results.machine.redis}, commit ${results.git.commit}${results.git.modified.length ? ` + ${results.git.modified.length} modified files` : ''}`,
  );
  out.push(`command: ${results.command}${results.via_npm ? '   (via npm run bench)' : ''}${results.scale !== 1 ? `   [sizes × ${results.scale}]` : ''}`, '');
  out.push(line(head), cols.map((c) => '-'.repeat(width[c])).join('  '));
  for (const r of rows) out.push(line(r));
  if (results.scenarios.e2e?.projection) out.push(...projectionLines(results.scenarios.e2e));
  out.push('', `load average (1 min) at start ${results.machine.loadavgAtStart[0]}, at end ${results.machine.loadavgAtEnd[0]}`);
  out.push('', 'child processes started:');
  for (const c of results.commands) out.push(`  ${c}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

let code;
try {
  code = await main();
} catch (err) {
  log(`error: ${err.stack ?? err}`);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
