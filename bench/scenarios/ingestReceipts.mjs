#!/usr/bin/env node
// Scenario ingestReceipts: what reading App Store receipts costs `rc-migrate plan` and `rc-migrate ingest`
// (issue 15: at least 5,000 rows/s with reading, and at least 0.7 of the same run without it; Redis per finished
// row within the scale goal, ≤ 150 B, the purchase index included).
//
// Rows: 50,000 (--rows N; from bench.mjs, scaled by --quick / --scale) App Store rows of real signed tokens from
// the tests' generator (lib/appleReceipts.mjs makeAppleHistories): base64 PKCS#7 receipts of 3-12 KB padded with
// random bytes (incompressible, never a repeated pattern) and ES256 JWS signed transactions, as a real export
// holds them: several tokens per user stored over the months (about 30% of rows superseded by a newer one of the
// same user), consumables kept only by an older receipt, StoreKit 2 renewals, 5% sandbox users, 1% of users
// with a second account whose receipt holds the same subscription (a conflict by purchase). Columns
// platform,app_user_id,fetch_token,product_id; the rows are shuffled so a user's receipts are far apart.
//
// Each command is the built CLI (dist/cli.js, or bench.mjs's private copy of it) as a child process, on a
// redis-server of the scenario's own (no persistence, redis.conf's listpack limits: scenarios/ledger.mjs), with
// reading on (the default: the survey pass reads tokens on its worker thread, ingest/surveyThread.ts), on in one
// thread (RC_MIGRATE_SURVEY_THREAD=0: what a one-core machine gets; a figure, not a goal) and off
// (RC_MIGRATE_READ_RECEIPTS=0, config readAppleReceipts: App Store tokens are opaque strings, as before issue 15:
// no survey pass, nothing superseded, no conflicts by purchase):
//   plan FILE --out DIR                         (a throw-away plan ledger, nothing queued)
//   ingest FILE --run-id ID --high-water-mark 0 (no workers: every row to send is queued)
// Rows/s = rows in the file / the child's wall time (spawn to exit, Node's start included), and by the child's
// own CPU time (lib/cpu-probe.mjs), with Redis's CPU time over the same span. `--rounds N` repeats the six runs,
// alternating the order of on / off / one; the figure is the median.
//
// Redis per finished row: after the first ingest with reading on, every queued row is answered as a worker
// answers it (RunLedger.recordAnswer with the outcome, the request and, for a success, the App Store purchases
// its token holds: src/workers/processor.ts), 5% of them refused by the store (--failed-share); the queue's keys
// are then deleted (a worker removes each finished job), and MEMORY USAGE of every key is summed by family, the
// purchase index (src/ledger/purchaseIndex.ts) apart.
//
// Then `rc-migrate report` of that run is timed: it reads the file again for failed.csv's cells and superseded.csv's
// users (the ledger keeps those rows' places only), and every superseded row must come back with its user.
//
//   npm run build && node bench/scenarios/ingestReceipts.mjs [--rows N] [--rounds N] [--failed-share F] [--cpu-prof DIR] [--json]
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { procCpuSeconds, spawnCli, stopAllChildren } from '../lib/children.mjs';
import { loadAppleReceipts, makeAppleHistories } from '../lib/appleReceipts.mjs';
import { DIST, ROOT, log, num, round, scaled } from '../lib/util.mjs';
import { memoryByFamily, outcomeOf, privateRedis } from './ledger.mjs';

export const INGEST_RECEIPTS_ROWS = 50_000;
export const GOAL_ROWS_PER_SECOND = 5000;
export const GOAL_RATIO = 0.7;
export const GOAL_BYTES_PER_ROW = 150;
const FAILED_SHARE = 0.05;
const HEADER = 'platform,app_user_id,fetch_token,product_id';
const PREFIX = 'bench-receipts';
const CPU_PROBE = pathToFileURL(join(ROOT, 'bench', 'lib', 'cpu-probe.mjs')).href;
const RUN_MS_LIMIT = 600_000;

/** Writes the rows as a CSV (tokens are base64, base64url and dots: nothing to quote); resolves with its bytes. */
async function writeCsv(path, rows) {
  const out = createWriteStream(path);
  let bytes = 0;
  const write = async (text) => {
    bytes += Buffer.byteLength(text);
    if (!out.write(text)) await once(out, 'drain');
  };
  await write(`${HEADER}\n`);
  for (let at = 0; at < rows.length; at += 1000) {
    await write(
      rows
        .slice(at, at + 1000)
        .map((r) => `ios,${r.app_user_id},${r.token},${r.product_id}\n`)
        .join(''),
    );
  }
  out.end();
  await once(out, 'close');
  return bytes;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** One CLI command as a child, timed: wall (spawn → exit), its own CPU (cpu-probe), Redis's CPU over the span. */
async function timeCommand(server, args, { reading, thread = true, label, tmp, profileDir }) {
  const cpuOut = join(tmp, `cpu-${label}-${Date.now()}.json`);
  const nodeArgs = ['--import', CPU_PROBE];
  if (profileDir) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${label}-${Date.now()}.cpuprofile`);
  const redisCpu0 = procCpuSeconds(server.pid);
  const load = loadavg()[0];
  const child = spawnCli(args, {
    env: {
      REDIS_URL: server.url,
      RC_MIGRATE_PREFIX: PREFIX,
      RC_MIGRATE_READ_RECEIPTS: reading ? '1' : '0',
      RC_MIGRATE_SURVEY_THREAD: thread ? '1' : '0',
      LOG_LEVEL: 'warn',
      BENCH_CPU_OUT: cpuOut,
    },
    nodeArgs,
  });
  const timer = setTimeout(() => child.kill('SIGTERM'), RUN_MS_LIMIT);
  const exit = await child.exited;
  clearTimeout(timer);
  const redisCpu = procCpuSeconds(server.pid) - redisCpu0;
  const wallMs = child.exitedAt - child.spawnedAt;
  const cpu = existsSync(cpuOut) ? JSON.parse(await readFile(cpuOut, 'utf8')) : undefined;
  return {
    exit,
    wallMs,
    cpuSeconds: cpu ? round((cpu.userUs + cpu.systemUs) / 1e6, 2) : undefined,
    maxRssMiB: cpu ? round(cpu.maxRssKb / 1024, 0) : undefined,
    redisCpuSeconds: round(redisCpu, 2),
    loadavg1: round(load, 2),
    stderrTail: child.stderrLines.slice(-5),
  };
}

/**
 * `rc-migrate report` of the answered run: its wall and CPU time, and how many of superseded.csv's rows got their
 * App User ID back from the file (every one, unless the file changed).
 */
async function timeReport(server, runId, tmp, superseded) {
  const out = join(tmp, `report-${runId}`);
  const t = await timeCommand(server, ['report', '--run-id', runId, '--out', out], { reading: true, label: 'report', tmp });
  if (t.exit.code !== 0 && t.exit.code !== 1) throw new Error(`rc-migrate report exited with ${t.exit.code ?? t.exit.signal}: ${t.stderrTail.join(' | ')}`);
  const lines = (await readFile(join(out, 'superseded.csv'), 'utf8')).split('\n').slice(1, -1);
  // source,line,app_user_id,…: the generator's users are plain ids, so the third cell is the user
  const users = lines.filter((l) => /^[^,]*,\d+,[^(,]/.test(l)).length;
  return { wallMs: t.wallMs, cpuSeconds: t.cpuSeconds, maxRssMiB: t.maxRssMiB, supersededRows: lines.length, supersededUsers: users, supersededExpected: superseded };
}

/** Rows/s of one timed command over `rows` rows. */
function rates(rows, t) {
  return { rowsPerSecond: Math.round(rows / (t.wallMs / 1000)), rowsPerCpuSecond: t.cpuSeconds ? Math.round(rows / t.cpuSeconds) : undefined };
}

/** Every job waiting in the queue (no priorities: the file has no expiry column), `page` at a time. */
async function* waitingJobs(redis, page = 1000) {
  const base = `${PREFIX}:receipts`;
  const total = await redis.llen(`${base}:wait`);
  for (let at = 0; at < total; at += page) {
    const ids = await redis.lrange(`${base}:wait`, at, at + page - 1);
    const pipe = redis.pipeline();
    for (const id of ids) pipe.hget(`${base}:${id}`, 'data');
    const data = await pipe.exec();
    yield data.map(([err, text]) => {
      if (err) throw err;
      return JSON.parse(text);
    });
  }
}

/** Runs `fn` over `items` with at most `n` at once. */
async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/**
 * Answers every queued row of the run as a worker does (outcome, request, a success's App Store purchases), then
 * deletes the queue's keys (a worker removes each finished job) and measures what Redis keeps, by family.
 */
async function finishAndMeasure(lib, server, runId, failedShare, purchaseIdsOf) {
  const { redis } = server;
  const ledger = new lib.RunLedger(redis, PREFIX, runId);
  const started = performance.now();
  let answered = 0;
  for await (const jobs of waitingJobs(redis)) {
    await pool(jobs, 64, async (job) => {
      const row = { src: job.src, line: job.line, platform: job.platform, body: job.body, input: job.input };
      const fails = createHash('sha256').update(`failed:${job.line}`).digest().readUInt32BE(0) / 2 ** 32 < failedShare;
      if (fails) row.directive = 'refused';
      const now = Date.now();
      const outcome = outcomeOf(row, job.fp, now - 1000, now);
      const purchases = outcome.status === 'succeeded' ? purchaseIdsOf(job.platform, job.body.fetch_token) : [];
      await ledger.recordAnswer(outcome, {
        sent: { platform: job.platform, body: job.body },
        request: { status: fails ? '400' : '200', durationMs: 40 + (job.line % 200), rateLimited: false },
        ...(purchases.length > 0 ? { purchases } : {}),
      });
      answered++;
    });
  }
  const answerSeconds = round((performance.now() - started) / 1000, 1);
  // what removeOnComplete leaves once every job is done: the queue's own keys go
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}:receipts:*`, 'COUNT', 2000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
  const state = await ledger.state();
  const memory = await memoryByFamily(redis, PREFIX, [runId]);
  // purchase index entries: HLEN of its buckets (its wide hash stays empty: values are ~20 bytes)
  let purchaseEntries = 0;
  cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}:*:ix:pb:*`, 'COUNT', 2000);
    cursor = next;
    if (keys.length === 0) continue;
    const pipe = redis.pipeline();
    for (const k of keys) pipe.hlen(k);
    for (const [, n] of await pipe.exec()) purchaseEntries += n;
  } while (cursor !== '0');
  const finished = state.rows_succeeded + state.rows_failed;
  const sum = (pred) => Object.entries(memory.families).reduce((n, [name, f]) => n + (pred(name) ? f.bytes : 0), 0);
  const total = sum(() => true);
  const purchaseIndex = sum((n) => n.startsWith('index: purchase'));
  const supersededRecords = sum((n) => n.startsWith('rows: sup'));
  const tokenIndex = sum((n) => n.startsWith('index:') && !n.startsWith('index: purchase'));
  const perFinished = (b) => round(b / finished, 1);
  return {
    answered,
    answerSeconds,
    failedShare,
    state: {
      read: state.rows_read,
      queued: state.rows_queued,
      succeeded: state.rows_succeeded,
      failed: state.rows_failed,
      superseded: state.rows_superseded,
      conflict: state.rows_conflict,
      held: state.rows_held,
      rejected: state.rows_rejected,
      duplicate: state.rows_duplicate,
    },
    finishedRows: finished,
    bytes: total,
    bytesPerFinishedRow: perFinished(total),
    // every row read has an outcome here: succeeded, failed, superseded or held
    bytesPerRowRead: round(total / state.rows_read, 1),
    supersededRecordBytesPerRow: round(supersededRecords / Math.max(1, state.rows_superseded), 1),
    purchaseIndex: {
      bytes: purchaseIndex,
      perFinishedRow: perFinished(purchaseIndex),
      entries: purchaseEntries,
      bytesPerEntry: round(purchaseIndex / Math.max(1, purchaseEntries), 1),
      entriesPerSucceededRow: round(purchaseEntries / Math.max(1, state.rows_succeeded), 2),
    },
    tokenIndexPerFinishedRow: perFinished(tokenIndex),
    runLedgerPerFinishedRow: perFinished(total - purchaseIndex - tokenIndex),
    withoutPurchaseIndexPerFinishedRow: perFinished(total - purchaseIndex),
    buckets: { count: memory.buckets, encodings: memory.encodings, maxEntries: memory.maxEntries },
    byFamily: Object.fromEntries(
      Object.entries(memory.families)
        .sort((a, b) => b[1].bytes - a[1].bytes)
        .map(([name, f]) => [name, { keys: f.keys, bytes: f.bytes, perFinishedRow: perFinished(f.bytes) }]),
    ),
  };
}

export async function ingestReceiptsScenario(ctx = {}) {
  const rows = ctx.ingestReceiptsRows ?? scaled(INGEST_RECEIPTS_ROWS, ctx.scale ?? 1, 1000);
  const rounds = ctx.rounds ?? 1;
  const failedShare = ctx.failedShare ?? FAILED_SHARE;
  const lib = ctx.lib ?? (await import(pathToFileURL(join(DIST, 'index.js')).href));
  const { applePurchaseIds } = await import(pathToFileURL(join(DIST, 'appstore', 'purchaseIds.js')).href);
  const tmp = await mkdtemp(join(ctx.tmp ?? tmpdir(), 'rcm-ingest-receipts-'));
  const file = join(tmp, 'app-store-export.csv');
  const result = { rows, rounds, loadavgAtStart: loadavg().map((l) => round(l, 2)) };
  let server;
  try {
    log(`ingestReceipts: generating ${num(rows)} App Store rows (signed receipts of 3-12 KB, StoreKit 2 transactions)`);
    const g0 = performance.now();
    const { appleSigner } = await loadAppleReceipts();
    const { rows: generated, expected } = await makeAppleHistories(await appleSigner(), rows);
    const lengths = generated.map((r) => r.token.length);
    const receiptLengths = generated.filter((r) => r.kind === 'receipt').map((r) => r.token.length);
    const csvBytes = await writeCsv(file, generated);
    result.corpus = {
      ...expected,
      csvBytes,
      meanTokenChars: Math.round(lengths.reduce((a, b) => a + b, 0) / lengths.length),
      receiptChars: { min: Math.min(...receiptLengths), max: Math.max(...receiptLengths), mean: Math.round(receiptLengths.reduce((a, b) => a + b, 0) / receiptLengths.length) },
      generationSeconds: round((performance.now() - g0) / 1000, 1),
    };
    log(
      `ingestReceipts: ${num(csvBytes / 2 ** 20, 1)} MiB CSV in ${result.corpus.generationSeconds} s; expected ${expected.superseded} superseded, ${expected.conflicts} conflicts`,
    );

    server = await privateRedis();
    const flush = () => server.redis.flushall();
    // on: reading, the survey's worker thread beside it (the default); one: reading in the survey's own thread
    // (RC_MIGRATE_SURVEY_THREAD=0); off: no reading
    const runs = { plan: { on: [], one: [], off: [] }, ingest: { on: [], one: [], off: [] } };
    const modes = (round_, first) => (round_ % 2 === 0 ? first : [...first].reverse());
    for (let round_ = 0; round_ < rounds; round_++) {
      for (const mode of modes(round_, ['on', 'off', 'one'])) {
        const reading = mode !== 'off';
        const out = join(tmp, `plan-${mode}-${round_}`);
        log(`ingestReceipts: plan, reading ${mode} (round ${round_ + 1})`);
        const t = await timeCommand(server, ['plan', file, '--out', out], { reading, thread: mode !== 'one', label: `plan-${mode}`, tmp, profileDir: ctx.profileDir });
        if (t.exit.code !== 0 && t.exit.code !== 1) throw new Error(`rc-migrate plan exited with ${t.exit.code ?? t.exit.signal}: ${t.stderrTail.join(' | ')}`);
        const plan = JSON.parse(await readFile(join(out, 'plan.json'), 'utf8'));
        runs.plan[mode].push({
          ...t,
          ...rates(rows, t),
          plan: { rows_read: plan.rows_read, rows_to_send: plan.rows_to_send, conflicts: plan.conflicts, receipts: plan.receipts },
        });
        log(`ingestReceipts: plan, reading ${mode}: ${num(rows / (t.wallMs / 1000))} rows/s (${t.wallMs} ms, CPU ${t.cpuSeconds} s)`);
        await flush();
      }
    }
    for (let round_ = 0; round_ < rounds; round_++) {
      for (const mode of modes(round_, ['off', 'on', 'one'])) {
        const reading = mode !== 'off';
        const runId = `receipts-${mode}-${round_}`;
        log(`ingestReceipts: ingest, reading ${mode} (round ${round_ + 1})`);
        const t = await timeCommand(server, ['ingest', file, '--run-id', runId, '--high-water-mark', '0'], {
          reading,
          thread: mode !== 'one',
          label: `ingest-${mode}`,
          tmp,
          profileDir: ctx.profileDir,
        });
        if (t.exit.code !== 0 && t.exit.code !== 1) throw new Error(`rc-migrate ingest exited with ${t.exit.code ?? t.exit.signal}: ${t.stderrTail.join(' | ')}`);
        const s = await new lib.RunLedger(server.redis, PREFIX, runId).state();
        runs.ingest[mode].push({
          ...t,
          ...rates(rows, t),
          ledger: { read: s.rows_read, queued: s.rows_queued, superseded: s.rows_superseded, conflict: s.rows_conflict, held: s.rows_held, rejected: s.rows_rejected },
        });
        log(
          `ingestReceipts: ingest, reading ${mode}: ${num(rows / (t.wallMs / 1000))} rows/s (${t.wallMs} ms, CPU ${t.cpuSeconds} s); ${s.rows_queued} queued, ${s.rows_superseded} superseded`,
        );
        if (mode === 'on' && !result.redis) {
          log(`ingestReceipts: answering the ${num(s.rows_queued)} queued rows as workers do (${Math.round(failedShare * 100)}% refused), then MEMORY USAGE by family`);
          result.redis = await finishAndMeasure(lib, server, runId, failedShare, applePurchaseIds);
          log(`ingestReceipts: ${result.redis.bytesPerFinishedRow} B per finished row, of which purchase index ${result.redis.purchaseIndex.perFinishedRow} B`);
          result.report = await timeReport(server, runId, tmp, s.rows_superseded);
          log(`ingestReceipts: report in ${result.report.wallMs} ms; superseded.csv ${result.report.supersededRows} rows, ${result.report.supersededUsers} with their user`);
        }
        await flush();
      }
    }
    const summarize = (list) => ({
      rowsPerSecond: Math.round(median(list.map((r) => r.rowsPerSecond))),
      rowsPerCpuSecond: Math.round(median(list.map((r) => r.rowsPerCpuSecond))),
      runs: list,
    });
    for (const cmd of ['plan', 'ingest']) {
      const on = summarize(runs[cmd].on);
      const one = summarize(runs[cmd].one);
      const off = summarize(runs[cmd].off);
      result[cmd] = {
        on,
        one,
        off,
        ratioOneThread: round(one.rowsPerSecond / off.rowsPerSecond, 3),
        ratio: round(on.rowsPerSecond / off.rowsPerSecond, 3),
        ratioCpu: round(on.rowsPerCpuSecond / off.rowsPerCpuSecond, 3),
        goalMet: on.rowsPerSecond >= GOAL_ROWS_PER_SECOND && on.rowsPerSecond / off.rowsPerSecond >= GOAL_RATIO,
      };
    }
    // Reading on must have read every token and decided as the generator intended: else the bench timed the wrong path.
    const planOn = runs.plan.on[0].plan;
    result.checks = {
      everyTokenRead: planOn.receipts.read === rows && planOn.receipts.unread === 0,
      supersededAsGenerated: planOn.receipts.superseded === expected.superseded,
      conflictsAsGenerated: planOn.conflicts === expected.conflicts,
      readingOffReadsNothing: runs.plan.off[0].plan.receipts.read === 0,
      oneThreadPlansAlike: JSON.stringify(runs.plan.one[0].plan) === JSON.stringify(planOn),
    };
    result.loadavgAtEnd = loadavg().map((l) => round(l, 2));
    return result;
  } finally {
    await server?.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The figures, as lines for a terminal. */
export function ingestReceiptsLines(r) {
  const c = r.corpus;
  const out = [];
  out.push(
    `ingestReceipts: ${num(r.rows)} App Store rows (${num(c.receipts)} receipts of ${num(c.receiptChars.min)}-${num(c.receiptChars.max)} chars, mean ${num(c.receiptChars.mean)}; ${num(c.signedTransactions)} signed transactions), ${num(c.users)} users; CSV ${num(c.csvBytes / 2 ** 20, 1)} MiB`,
  );
  out.push(`  generator's truth: ${num(c.superseded)} superseded, ${num(c.conflicts)} conflicts by purchase, ${num(c.sandbox)} sandbox rows, ${num(c.purchases)} purchases`);
  for (const cmd of ['plan', 'ingest']) {
    const x = r[cmd];
    const line = (m) => `${num(m.rowsPerSecond)} rows/s wall, ${num(m.rowsPerCpuSecond)} per CPU s`;
    out.push(
      `  ${cmd.padEnd(6)} reading on: ${line(x.on)}; off: ${line(x.off)}; ratio ${x.ratio} (CPU ${x.ratioCpu}); goal ≥ ${num(GOAL_ROWS_PER_SECOND)} rows/s and ≥ ${GOAL_RATIO}: ${x.goalMet ? 'met' : 'NOT met'}`,
    );
    out.push(`    survey in one thread (RC_MIGRATE_SURVEY_THREAD=0): ${line(x.one)}; ratio ${x.ratioOneThread}`);
    for (const [mode, m] of [
      ['on', x.on],
      ['one', x.one],
      ['off', x.off],
    ])
      for (const run of m.runs)
        out.push(
          `    ${mode.padEnd(3)} ${num(run.wallMs)} ms wall, node CPU ${run.cpuSeconds} s, Redis CPU ${run.redisCpuSeconds} s, max RSS ${run.maxRssMiB} MiB, load ${run.loadavg1}${run.plan ? `; plan: ${run.plan.rows_to_send} to send, ${run.plan.conflicts} conflicts, receipts ${JSON.stringify(run.plan.receipts)}` : `; ledger ${JSON.stringify(run.ledger)}`}`,
        );
  }
  const d = r.redis;
  if (d) {
    out.push(
      `  Redis after the ingest (reading on) and every queued row answered (${Math.round(d.failedShare * 100)}% refused): ${d.bytesPerFinishedRow} B per finished row (goal ≤ ${GOAL_BYTES_PER_ROW}), ${d.bytesPerRowRead} B per row read`,
    );
    out.push(
      `    purchase index ${d.purchaseIndex.perFinishedRow} B per finished row (${num(d.purchaseIndex.entries)} entries, ${d.purchaseIndex.bytesPerEntry} B each, ${d.purchaseIndex.entriesPerSucceededRow} per succeeded row); token index ${d.tokenIndexPerFinishedRow} B; run ledger ${d.runLedgerPerFinishedRow} B; without the purchase index ${d.withoutPurchaseIndexPerFinishedRow} B`,
    );
    out.push(
      `    a superseded row's record: ${d.supersededRecordBytesPerRow} B (rows: sup buckets, state, wide); rows: ${JSON.stringify(d.state)}; buckets ${d.buckets.count} ${JSON.stringify(d.buckets.encodings)}, fullest ${d.buckets.maxEntries}`,
    );
    for (const [name, f] of Object.entries(d.byFamily))
      out.push(`    ${name.padEnd(44)} ${String(f.keys).padStart(6)} keys ${String(f.bytes).padStart(10)} B ${String(f.perFinishedRow).padStart(7)} B/row`);
  }
  if (r.report) {
    const x = r.report;
    out.push(
      `  report of that run: ${num(x.wallMs)} ms wall, node CPU ${x.cpuSeconds} s, max RSS ${x.maxRssMiB} MiB; superseded.csv ${num(x.supersededRows)} rows (ledger ${num(x.supersededExpected)}), ${num(x.supersededUsers)} with their user`,
    );
  }
  out.push(`  checks: ${JSON.stringify(r.checks)}`);
  out.push(`  load average at start ${r.loadavgAtStart.join(' ')}, at end ${r.loadavgAtEnd.join(' ')}`);
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const flag = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const known = new Set(['--rows', '--rounds', '--failed-share', '--cpu-prof', '--json']);
  const bad = args.filter((a, i) => a.startsWith('--') && !known.has(a) && !(i > 0 && known.has(args[i - 1])));
  if (bad.length > 0) {
    process.stderr.write(`usage: node bench/scenarios/ingestReceipts.mjs [--rows N] [--rounds N] [--failed-share F] [--cpu-prof DIR] [--json] (unknown: ${bad.join(' ')})\n`);
    process.exit(2);
  }
  const profileDir = flag('--cpu-prof') ? resolve(flag('--cpu-prof')) : undefined;
  if (profileDir) await mkdir(profileDir, { recursive: true });
  try {
    const result = await ingestReceiptsScenario({
      ingestReceiptsRows: Number(flag('--rows') ?? INGEST_RECEIPTS_ROWS),
      rounds: Number(flag('--rounds') ?? 1),
      ...(flag('--failed-share') ? { failedShare: Number(flag('--failed-share')) } : {}),
      ...(profileDir ? { profileDir } : {}),
    });
    process.stdout.write(`${ingestReceiptsLines(result).join('\n')}\n`);
    if (args.includes('--json')) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await stopAllChildren();
  }
}
