// Scenario ledger: Redis bytes per finished row of the run ledger and the cross-run index, on realistic payloads,
// at a given share of failed rows.
//
// 200,000 rows (--rows N, or --ledger-rows N from bench.mjs; --quick / --scale divide it) from lib/payloads.mjs
// (Play tokens of ~150 characters, Stripe ids; UUID and $RCAnonymousID users; $email/$displayName attributes; 5%
// lapsed), whose App Store receipts are replaced by 3 KB of incompressible base64 (random bytes, as a signed DER
// file is: never a repeated pattern). A share of the rows fails (--failed-share, default both 0.05 and 0.30, each
// on a Redis of its own): store refusals with RevenueCat's fixed messages, and on Play rows Google's "token
// expired" with the expiry date in its message (a text that varies between rows). They go through the ledger as
// the pipeline puts them there: RunLedger.admit in chunks of 1,000 (the ingester's), then one
// RunLedger.recordAnswer per row with the outcome a worker builds (a success's subscriber summary; a failure's
// input cells and body, which the ledger must not keep) and its request. No queue and no HTTP: what is measured
// is the ledger alone, so the figure is exact and the run takes a minute, not an hour. (Scenario e2e measures
// the same after a real run through BullMQ and the sandbox.)
//
// It runs on a redis-server of its own, started with the listpack limits of redis.conf (hash-max-listpack-entries
// 128, hash-max-listpack-value 64: the ledger must not rely on more), and prints MEMORY USAGE (SAMPLES 0) summed
// by key family, per finished row; per succeeded and per failed row (the row table's bytes shared out by the
// bytes of each kind's entries, the index's to the succeeded rows, the rest to every finished row); the
// buckets' encodings; and the time `reportRun` takes to write the report from the ledger. A second run over the
// same rows (a nightly backfill that finds everything migrated) shows what a skipped row costs.
//
//   node bench/scenarios/ledger.mjs [--rows N] [--failed-share 0.05,0.3] [--dist DIR] [--json]   (DIR defaults to dist/)
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { payloadRows, PAYLOAD_HEADER } from '../lib/payloads.mjs';
import { DIST, ROOT, freePort, log, round, scaled } from '../lib/util.mjs';

export const LEDGER_ROWS = 200_000;
/** Shares of failed rows measured by default, each on a Redis of its own. */
export const FAILED_SHARES = [0.05, 0.3];
/** Bytes of an App Store receipt before base64 (3,000 characters of text). */
const RECEIPT_BYTES = 2250;
const CHUNK = 1000;
const CONCURRENCY = 64;
const SOURCE = 'exports/receipts-2026-11-20.csv';
const COLUMNS = PAYLOAD_HEADER.split(',');

const REFUSED = [
  { code: 7103, message: 'The receipt is not valid.' },
  { code: 7102, message: 'The receipt is already in use by another subscriber.' },
  { code: 7852, message: 'The purchase belongs to another user.' },
  { code: 7712, message: 'The product is missing in the Apple receipt.' },
];

/** Deterministic per-row number in [0, 1) (the same rows fail in every run with the same seed). */
function unit(seed, i, salt) {
  return createHash('sha256').update(`${seed}:${salt}:${i}`).digest().readUInt32BE(0) / 2 ** 32;
}

/** A throw-away redis-server with redis.conf's listpack limits, no persistence (also used by ingestReceipts.mjs). */
export async function privateRedis() {
  const dir = await mkdtemp(join(tmpdir(), 'rcm-ledger-bench-'));
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--hash-max-listpack-entries', '128', '--hash-max-listpack-value', '64'],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const redis = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: (n) => (n > 50 ? null : 100) });
  // the server may not listen yet: ioredis retries (a refused connection until then is expected, not news)
  const quiet = () => undefined;
  redis.on('error', quiet);
  await redis.ping();
  redis.off('error', quiet);
  return {
    url,
    redis,
    pid: child.pid,
    async stop() {
      redis.disconnect();
      child.kill('SIGKILL');
      await once(child, 'exit').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A row of the generator as the ingester makes it: platform, body (what is sent) and the input cells; an App Store
 * row's receipt is 3 KB of random base64. Whether it fails is decided here, by `failedShare`.
 */
function rowOf(generated, line, now, failedShare, seed) {
  const cells = Object.fromEntries(COLUMNS.map((c, i) => [c, generated.cells[i]]));
  if (generated.platform === 'ios') cells.fetch_token = receipt(seed, line);
  const fails = unit(seed, line, 7) < failedShare;
  const body = { app_user_id: cells.app_user_id, fetch_token: cells.fetch_token };
  if (cells.product_id) body.product_id = cells.product_id;
  if (cells.price) {
    body.price = Number(cells.price);
    body.currency = cells.currency;
  }
  const attributes = {};
  if (cells.$email) attributes.$email = { value: cells.$email, updated_at_ms: now };
  if (cells.$displayName) attributes.$displayName = { value: cells.$displayName, updated_at_ms: now };
  if (Object.keys(attributes).length > 0) body.attributes = attributes;
  const directive = fails ? 'refused' : generated.directive === 'expired' ? 'expired' : undefined;
  return { src: SOURCE, line, platform: generated.platform, body, input: cells, directive };
}

/**
 * An App Store receipt of RECEIPT_BYTES random bytes, as base64: an AES-128-CTR keystream keyed by the seed, one
 * counter block per line, so that the next night's run reads the very same receipts.
 */
function receipt(seed, line) {
  const key = createHash('sha256').update(`rc-migrate bench ledger receipts ${seed}`).digest().subarray(0, 16);
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(line, 0);
  return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(RECEIPT_BYTES)).toString('base64');
}

/** Google's answer to a token past its cut-off names the day it expired: a message that varies between rows. */
function googleExpired(line) {
  const date = new Date(Date.UTC(2026, 0, 1) - (line % 400) * 86_400_000).toISOString().slice(0, 10);
  return {
    reason: 'google_token_expired',
    message: `Google Play no longer validates this purchase token: it expired on ${date}, more than ~60 days before it was sent (the store answers 410 purchaseTokenNoLongerValid), so RevenueCat cannot import it; retrying will not help.`,
  };
}

/** The outcome a worker writes for the row, from the answer the sandbox would give. */
export function outcomeOf(row, fp, queuedAt, finishedAt) {
  const base = { src: row.src, line: row.line, fp, platform: row.platform, app_user_id: row.body.app_user_id, attempts: 1, finished_at: new Date(finishedAt).toISOString() };
  if (row.body.product_id) base.product_id = row.body.product_id;
  if (row.directive === 'refused') {
    const refused = REFUSED[row.line % REFUSED.length];
    const why =
      row.platform === 'android' && row.line % 2 === 0
        ? { ...googleExpired(row.line), past_google_cutoff: true }
        : { code: refused.code, reason: `rc_${refused.code}`, message: refused.message };
    return {
      ...base,
      status: 'failed',
      token: `${row.body.fetch_token.slice(0, 4)}…${row.body.fetch_token.slice(-4)}`,
      queued_at: new Date(queuedAt).toISOString(),
      http_status: 400,
      ...why,
      input: row.input,
      body: row.body,
    };
  }
  // The import answer's subscriber: one entitlement from the row's product (a lapsed one shows none); Stripe rows
  // name no product, so only the user is checked.
  const expires = new Date(Math.floor(finishedAt / 1000) * 1000 + (row.directive === 'expired' ? -40 : 30) * 86_400_000).toISOString().replace('.000Z', 'Z');
  const product = row.body.product_id;
  const active = row.directive === 'expired' ? [] : [{ id: 'premium', expires_date: expires, product_identifier: product ?? 'prod_Stripe01' }];
  return {
    ...base,
    status: 'succeeded',
    http_status: 200,
    subscriber: {
      original_app_user_id: row.body.app_user_id,
      active_entitlements: active,
      product_found: product ? 'subscription' : 'not_checked',
      ...(product ? { product: { expires_date: expires, is_sandbox: false } } : {}),
    },
  };
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

/** Counts the commands a connection sends, by name (a script by its name: ioredis sends EVALSHA with its SHA). */
function countCommands(redis) {
  const counts = {};
  const send = redis.sendCommand.bind(redis);
  const bySha = new Map(Object.entries(redis.scriptsSet ?? {}).map(([name, s]) => [s.sha, name]));
  redis.sendCommand = (command, stream) => {
    let name = command.name;
    if (name === 'evalsha' || name === 'eval') {
      if (bySha.size === 0) for (const [n, sc] of Object.entries(redis.scriptsSet ?? {})) bySha.set(sc.sha, n);
      name = `${name} ${bySha.get(String(command.args[0])) ?? '?'}`;
    }
    counts[name] = (counts[name] ?? 0) + 1;
    return send(command, stream);
  };
  return counts;
}

/** Admits and answers every row of `rows` generated rows into run `runId`; returns the ledger's state. */
async function migrate(lib, redis, prefix, runId, rows, seed, failedShare) {
  const ledger = new lib.RunLedger(redis, prefix, runId);
  await ledger.beginIngest([SOURCE]);
  const gen = payloadRows(rows, { tag: 'ledger', rowsPerUser: 2, seed, refusals: [] });
  const kinds = {};
  for (let start = 0; start < rows; start += CHUNK) {
    const now = Date.now();
    const chunk = [];
    for (let i = start; i < Math.min(rows, start + CHUNK); i++) chunk.push(rowOf(gen.next(i), i + 2, now, failedShare, seed));
    const admissions = await ledger.admit(chunk);
    const answers = [];
    admissions.forEach((a, i) => {
      kinds[a.kind] = (kinds[a.kind] ?? 0) + 1;
      if (a.fp !== undefined) answers.push([chunk[i], a.fp]);
    });
    await pool(answers, CONCURRENCY, async ([row, fp]) => {
      const outcome = outcomeOf(row, fp, now, Date.now());
      const status = outcome.status === 'failed' ? '400' : '200';
      await ledger.recordAnswer(outcome, { sent: { platform: row.platform, body: row.body }, request: { status, durationMs: 40 + (row.line % 200), rateLimited: false } });
    });
    if (start > 0 && start % 50_000 === 0) log(`ledger: ${runId}: ${start} rows`);
  }
  await ledger.endIngest();
  return { ledger, kinds, state: await ledger.state() };
}

/** What a key holds, from its name under the prefix. */
function familyOf(rest) {
  if (/^run:\{[^}]*\}:/.test(rest)) return `run: ${rest.slice(rest.indexOf('}:') + 2)} (the run's own keys)`;
  const m = /^\{[^}]*\}:(run:[^:]+|ix):(.*)$/.exec(rest);
  if (!m) return rest;
  const what = m[2].startsWith('b:')
    ? 'buckets'
    : m[2].startsWith('pb:')
      ? 'purchase buckets'
      : m[2] === 'pstate'
        ? 'purchase state'
        : m[2] === 'pw'
          ? 'purchase wide'
          : m[2].startsWith('sb:')
            ? 'sup buckets'
            : m[2] === 'sup'
              ? 'sup state'
              : m[2] === 'sw'
                ? 'sup wide'
                : m[2];
  if (m[1] === 'ix') return `index: ${what}`;
  return `rows: ${what}`;
}

const FAMILY_NOTE = {
  'rows: buckets': 'one record per row (succeeded and failed: compact; others: kind, format, place, user)',
  'rows: w': 'records too long for a bucket',
  'rows: err': 'the 20 most recent failures per shard',
  'rows: c': 'counters per shard',
  'rows: sup buckets': "superseded row's place → its carrier's place (packed; its user is read again from the source)",
  'index: buckets': 'token → user hash, payload hash, run',
  'index: purchase buckets': 'App Store purchase (environment + original transaction id) → user hash, run, row',
};

/**
 * MEMORY USAGE of every key under the prefix, by family (and by run for the rows' keys), and the bytes of the row
 * table's bucket entries (key + record) by record kind, to share the buckets' memory out between kinds.
 */
export async function memoryByFamily(redis, prefix, runs) {
  const families = {};
  let cursor = '0';
  const encodings = {};
  const entryBytes = {};
  let maxEntries = 0;
  let buckets = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 2000);
    cursor = next;
    if (keys.length === 0) continue;
    const pipe = redis.pipeline();
    for (const key of keys) pipe.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    const sizes = await pipe.exec();
    const info = redis.pipeline();
    const bucketKeys = keys.filter((k) => /:s?b:\d+$/.test(k));
    for (const key of bucketKeys) info.object('ENCODING', key).hlen(key).callBuffer('HGETALL', key);
    const infos = bucketKeys.length > 0 ? await info.exec() : [];
    bucketKeys.forEach((key, i) => {
      const enc = infos[3 * i][1];
      encodings[enc] = (encodings[enc] ?? 0) + 1;
      maxEntries = Math.max(maxEntries, infos[3 * i + 1][1]);
      buckets++;
      if (/:run:[^:]+:b:\d+$/.test(key)) {
        const flat = infos[3 * i + 2][1];
        for (let j = 0; j + 1 < flat.length; j += 2) {
          const kind = String.fromCharCode(flat[j + 1][0]);
          entryBytes[kind] = (entryBytes[kind] ?? 0) + flat[j].length + flat[j + 1].length;
        }
      }
    });
    keys.forEach((key, i) => {
      const rest = key.slice(prefix.length + 1);
      const run = runs.find((r) => rest.includes(`:run:${r}:`) || rest.includes(`run:{${r}}`));
      const family = `${familyOf(rest)}${run && !rest.startsWith('run:{') ? ` [${run}]` : ''}`;
      const f = (families[family] ??= { keys: 0, bytes: 0 });
      f.keys++;
      f.bytes += Number(sizes[i][1] ?? 0);
    });
  } while (cursor !== '0');
  return { families, encodings, maxEntries, buckets, entryBytes };
}

/** One measurement: `rows` rows of which `failedShare` fail, on a Redis of its own. */
async function measure(ctx, rows, failedShare) {
  const server = await privateRedis();
  const prefix = 'bench-ledger';
  const { lib } = ctx;
  const pct = `${Math.round(failedShare * 100)}% failed`;
  try {
    log(`ledger (${pct}): ${rows} rows through RunLedger.admit + recordAnswer on a private redis-server (listpack limits 128 / 64)`);
    const memory0 = Number(/^used_memory:(\d+)/m.exec(await server.redis.info('memory'))?.[1]);
    const started = performance.now();
    const counting = server.redis.duplicate();
    const calls = countCommands(counting);
    const first = await migrate(lib, counting, prefix, 'night-1', rows, 1, failedShare);
    counting.disconnect();
    const migrateMs = performance.now() - started;
    const s = first.state;
    const finished = s.rows_succeeded + s.rows_failed;
    const after1 = await memoryByFamily(server.redis, prefix, ['night-1']);
    const memory1 = Number(/^used_memory:(\d+)/m.exec(await server.redis.info('memory'))?.[1]);

    // Time to write the report from the ledger (the whole of it: CSVs, summary, report.html).
    const outDir = await mkdtemp(join(tmpdir(), 'rcm-ledger-report-'));
    const config = lib.loadConfig({ env: {}, overrides: { redisUrl: server.url, prefix, logLevel: 'warn' } });
    const reportStarted = performance.now();
    const report = await lib.reportRun({ config, runId: 'night-1', outDir });
    const reportMs = performance.now() - reportStarted;
    await rm(outDir, { recursive: true, force: true });

    // The next night: the same rows again, all already migrated (the failed ones are sent again and fail again).
    const second = ctx.secondNight === false ? undefined : await migrate(lib, server.redis, prefix, 'night-2', rows, 1, failedShare);
    const after2 = second ? await memoryByFamily(server.redis, prefix, ['night-1', 'night-2']) : undefined;

    const sum = (fams, pred) => Object.entries(fams).reduce((n, [name, f]) => n + (pred(name) ? f.bytes : 0), 0);
    const run1 = (name) => name.endsWith('[night-1]') || name.startsWith('run: ');
    const ledgerBytes = sum(after1.families, () => true);
    const indexBytes = sum(after1.families, (n) => n.startsWith('index:'));
    const runBytes = sum(after1.families, run1);
    const bucketBytes = sum(after1.families, (n) => n.startsWith('rows: buckets'));
    const wideBytes = sum(after1.families, (n) => n.startsWith('rows: w '));
    const perRow = (b, n = finished) => round(b / n, 1);
    // Per kind: the row table's bytes shared out by the bytes of each kind's entries; the index to the succeeded
    // rows; everything else (counters, timeline, dictionary, recent errors, wide records) to every finished row.
    const e = after1.entryBytes;
    const entryTotal = Object.values(e).reduce((a, b) => a + b, 0) || 1;
    const shared = ledgerBytes - bucketBytes - indexBytes;
    const perSucceeded = (bucketBytes * ((e.s ?? 0) / entryTotal) + indexBytes + shared * (s.rows_succeeded / finished)) / Math.max(1, s.rows_succeeded);
    const perFailed = (bucketBytes * ((e.f ?? 0) / entryTotal) + shared * (s.rows_failed / finished)) / Math.max(1, s.rows_failed);
    const skippedBytes = after2 ? sum(after2.families, (n) => n.endsWith('[night-2]')) : 0;
    const result = {
      rows,
      failedShare,
      receipt: `${RECEIPT_BYTES} random bytes as base64 (${Math.ceil(RECEIPT_BYTES / 3) * 4} characters) per App Store row`,
      measuredOn: 'private redis-server, hash-max-listpack-entries 128, hash-max-listpack-value 64',
      admissions: first.kinds,
      succeeded: s.rows_succeeded,
      failed: s.rows_failed,
      migrateSeconds: round(migrateMs / 1000, 1),
      usedMemoryDelta: memory1 - memory0,
      ledgerBytes,
      bytesPerFinishedRow: perRow(ledgerBytes),
      runLedgerPerRow: perRow(runBytes),
      indexPerRow: perRow(indexBytes),
      perSucceededRow: round(perSucceeded, 1),
      perFailedRow: round(perFailed, 1),
      wideRecords: { bytes: wideBytes },
      buckets: { count: after1.buckets, encodings: after1.encodings, maxEntries: after1.maxEntries },
      byFamily: Object.fromEntries(
        Object.entries(after1.families)
          .sort((a, b) => b[1].bytes - a[1].bytes)
          .map(([name, f]) => [
            name,
            { keys: f.keys, bytes: f.bytes, perRow: perRow(f.bytes), ...(FAMILY_NOTE[name.replace(/ \[.*\]$/, '')] ? { what: FAMILY_NOTE[name.replace(/ \[.*\]$/, '')] } : {}) },
          ]),
      ),
      callsPerRow: Object.fromEntries(Object.entries(calls).map(([name, n]) => [name, round(n / finished, 3)])),
      reportSeconds: round(reportMs / 1000, 2),
      reportExitCode: report.exitCode,
      ...(second
        ? {
            secondRun: {
              admissions: second.kinds,
              bytesPerRow: perRow(skippedBytes, rows),
              note: 'a backfill finding every row migrated: skipped rows (and the failed ones, sent again)',
            },
          }
        : {}),
    };
    log(
      `ledger (${pct}): ${result.bytesPerFinishedRow} B per finished row (run ${result.runLedgerPerRow} + index ${result.indexPerRow}); succeeded ${result.perSucceededRow} B, failed ${result.perFailedRow} B`,
    );
    return result;
  } finally {
    await server.stop();
  }
}

/**
 * Measures each share of failed rows (ctx.failedShares, default FAILED_SHARES) on a Redis of its own. The result
 * is the first share's measurement (what bench.mjs tabulates), with every share's under `byFailedShare`.
 */
export async function ledgerScenario(ctx) {
  const rows = ctx.ledgerRows ?? scaled(LEDGER_ROWS, ctx.scale ?? 1, 1000);
  const shares = ctx.failedShares ?? FAILED_SHARES;
  const results = [];
  for (const [i, share] of shares.entries()) results.push(await measure({ ...ctx, secondNight: ctx.secondNight ?? i === 0 }, rows, share));
  return { ...results[0], byFailedShare: results };
}

/** Prints one measurement as a table on stdout. */
function printOne(r) {
  const out = [];
  out.push(`ledger: ${r.rows} rows (${r.succeeded} succeeded, ${r.failed} failed: ${Math.round(r.failedShare * 100)}%), ${r.receipt}; ${r.measuredOn}`);
  out.push(`  admitted: ${JSON.stringify(r.admissions)} in ${r.migrateSeconds} s`);
  out.push(
    `  Redis after the run: ${r.ledgerBytes} B = ${r.bytesPerFinishedRow} B per finished row (goal ≤ 150): run ledger ${r.runLedgerPerRow} + cross-run index ${r.indexPerRow}`,
  );
  out.push(`  per succeeded row ${r.perSucceededRow} B (record + index entry), per failed row ${r.perFailedRow} B (record: no input kept)`);
  out.push(`  buckets: ${r.buckets.count}, encodings ${JSON.stringify(r.buckets.encodings)}, fullest ${r.buckets.maxEntries} entries; wide records ${r.wideRecords.bytes} B`);
  out.push(
    `  commands per finished row (ingest's admit and the workers' answers): ${Object.entries(r.callsPerRow)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  out.push(`  report written from the ledger in ${r.reportSeconds} s`);
  if (r.secondRun) out.push(`  next night, same rows: ${JSON.stringify(r.secondRun.admissions)}, ${r.secondRun.bytesPerRow} B per row`);
  out.push('  by key family (MEMORY USAGE, SAMPLES 0):');
  const width = Math.max(...Object.keys(r.byFamily).map((k) => k.length));
  for (const [name, f] of Object.entries(r.byFamily)) {
    out.push(`    ${name.padEnd(width)}  ${String(f.keys).padStart(6)} keys ${String(f.bytes).padStart(11)} B ${String(f.perRow).padStart(7)} B/row${f.what ? `  ${f.what}` : ''}`);
  }
  return out.join('\n');
}

/** Prints every share's measurement, then a summary line per share. */
export function printLedger(r) {
  const all = r.byFailedShare ?? [r];
  const summary = all.map(
    (m) =>
      `  ${String(Math.round(m.failedShare * 100)).padStart(3)}% failed: ${m.bytesPerFinishedRow} B per finished row (goal ≤ 150), ${m.perSucceededRow} B per succeeded, ${m.perFailedRow} B per failed`,
  );
  process.stdout.write(`${all.map(printOne).join('\n\n')}\n\nsummary (${r.rows} rows, ${r.receipt}):\n${summary.join('\n')}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const flag = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const dist = flag('--dist') ?? DIST;
  const lib = await import(pathToFileURL(join(dist, 'index.js')).href);
  const shares = flag('--failed-share')?.split(',').map(Number);
  if (shares && shares.some((x) => !(x >= 0 && x <= 1))) throw new Error('--failed-share: give shares between 0 and 1, comma-separated (0.05,0.3)');
  const result = await ledgerScenario({ lib, ledgerRows: Number(flag('--rows') ?? LEDGER_ROWS), root: ROOT, ...(shares ? { failedShares: shares } : {}) });
  printLedger(result);
  if (args.includes('--json')) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
