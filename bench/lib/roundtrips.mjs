// Counting Redis work per row, two ways:
//  - server side: INFO commandstats before and after, per command (a proxy: commands that Lua scripts call
//    are counted too, and on a shared Redis so are other clients' commands);
//  - client side: lib/redis-probe.mjs inside the process, which counts commands and round trips (a pipeline is
//    one), with two snapshots around the measured stretch.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DIST, ROOT, round } from './util.mjs';

export const REDIS_PROBE_URL = pathToFileURL(join(ROOT, 'bench', 'lib', 'redis-probe.mjs')).href;

/** INFO commandstats as { command: calls }. */
export async function commandStats(redis) {
  const info = await redis.info('commandstats');
  const out = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

/** Per-row deltas of two commandstats snapshots: total and the commands that make up most of it. */
export function commandStatsPerRow(before, after, rows, top = 12) {
  const delta = {};
  let total = 0;
  for (const [cmd, calls] of Object.entries(after)) {
    const d = calls - (before[cmd] ?? 0);
    if (d <= 0) continue;
    delta[cmd] = d;
    total += d;
  }
  const sorted = Object.entries(delta).sort((a, b) => b[1] - a[1]);
  return {
    rows,
    commandsPerRow: round(total / rows, 2),
    topPerRow: Object.fromEntries(sorted.slice(0, top).map(([c, d]) => [c, round(d / rows, 2)])),
    note: 'server side (INFO commandstats): includes the commands Lua scripts call, and any other client of this Redis',
  };
}

/** SHA-1 (first 12 hex digits, as the probe records them) → script name, for rc-migrate's and BullMQ's scripts. */
export async function scriptNames() {
  const names = {};
  const sha = (text) => createHash('sha1').update(text).digest('hex').slice(0, 12);
  try {
    const { scriptFiles } = await import(pathToFileURL(join(DIST, 'redis', 'scripts.js')).href);
    for (const s of scriptFiles().values()) names[sha(s.lua)] = `rc-migrate:${s.name}`;
  } catch {
    // an older build: shas stay as they are
  }
  try {
    // BullMQ's CommonJS build (its ESM index uses extension-less imports that node's ESM loader refuses).
    const require = createRequire(join(ROOT, 'package.json'));
    const bullmqDir = join(require.resolve('bullmq/package.json'), '..');
    const scripts = require(join(bullmqDir, 'dist', 'cjs', 'scripts', 'index.js'));
    for (const s of Object.values(scripts)) if (s && typeof s.content === 'string') names[sha(s.content)] = `bullmq:${s.name}`;
  } catch {
    // bullmq's layout changed: shas stay as they are
  }
  return names;
}

/** Reads a probe file's snapshots (one JSON line each). */
export function readRedisProbe(file) {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

/**
 * Commands and round trips per row between two snapshots of one or more processes' probes (summed), with the
 * scripts named. `marks` picks the snapshots by label (default: the first two SIGUSR2 marks).
 */
export function probePerRow(files, rows, names = {}, marks = ['mark1', 'mark2']) {
  const sum = { commands: 0, roundTrips: 0, pipelines: 0, byCommand: {}, scripts: {} };
  const evalTexts = {};
  const missing = [];
  for (const file of files) {
    const snaps = readRedisProbe(file);
    const a = snaps.find((s) => s.label === marks[0]);
    const b = snaps.find((s) => s.label === marks[1]);
    if (!a || !b) {
      missing.push(file);
      continue;
    }
    for (const k of ['commands', 'roundTrips', 'pipelines']) sum[k] += b[k] - a[k];
    Object.assign(evalTexts, b.evalTexts ?? {});
    for (const k of ['byCommand', 'scripts']) {
      for (const [name, n] of Object.entries(b[k])) {
        const d = n - (a[k][name] ?? 0);
        if (d > 0) sum[k][name] = (sum[k][name] ?? 0) + d;
      }
    }
  }
  if (missing.length === files.length) return { missing };
  const perRow = (obj) =>
    Object.fromEntries(
      Object.entries(obj)
        .sort((x, y) => y[1] - x[1])
        .map(([k, v]) => [k, round(v / rows, 3)]),
    );
  const scripts = {};
  const scriptName = (key) => {
    if (!key.startsWith('eval:')) return names[key] ?? key;
    const sha = key.slice(5);
    return `EVAL text: ${names[sha] ?? evalTexts[sha] ?? sha}`;
  };
  for (const [key, n] of Object.entries(sum.scripts)) scripts[scriptName(key)] = (scripts[scriptName(key)] ?? 0) + n;
  return {
    rows,
    roundTripsPerRow: round(sum.roundTrips / rows, 2),
    commandsPerRow: round(sum.commands / rows, 2),
    pipelinesPerRow: round(sum.pipelines / rows, 2),
    byCommandPerRow: perRow(sum.byCommand),
    scriptsPerRow: perRow(scripts),
    missing,
    note: 'client side (lib/redis-probe.mjs): commands sent by the process; a pipeline or MULTI/EXEC is one round trip',
  };
}

/**
 * Marks the measured stretch of a run: at the first outcome and at completion it sends SIGUSR2 to the probed
 * processes (their probes snapshot) and takes INFO commandstats. Call `tick(state)` on every ledger poll and
 * `end(state)` once the run is complete; `result(names)` gives both counts per row between the two marks.
 */
export function runMarks(redis, processes, probeFiles) {
  const marks = [];
  const mark = (done) => {
    for (const p of processes) {
      try {
        p.kill('SIGUSR2');
      } catch {
        // gone: its probe has no such mark, reported as missing
      }
    }
    marks.push({ at: Date.now(), done, stats: commandStats(redis) });
  };
  return {
    tick(state) {
      const done = state.rows_succeeded + state.rows_failed;
      if (marks.length === 0 && done > 0) mark(done);
    },
    async end(state) {
      if (marks.length === 0) return;
      mark(state.rows_succeeded + state.rows_failed);
      // Give the probes a moment to write (the processes are about to be stopped).
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && !probeFiles.every((f) => readRedisProbe(f).some((s) => s.label === 'mark2'))) {
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async result(names) {
      if (marks.length < 2) return undefined;
      const [a, b] = marks;
      const rows = b.done - a.done;
      if (rows <= 0) return undefined;
      return {
        rowsBetweenMarks: rows,
        msBetweenMarks: b.at - a.at,
        perSecondBetweenMarks: round(rows / ((b.at - a.at) / 1000), 0),
        client: probePerRow(probeFiles, rows, names),
        server: commandStatsPerRow(await a.stats, await b.stats, rows),
      };
    },
  };
}
