// Scenario `discovery`: limits the client is not told (no --rate, no rate-limit headers). Two `rc-migrate
// work` processes against a sandbox with 50 ms latency, one case after another:
//   s10, s50, s200  10, 50 and 200 requests/s in one-second windows (fixed by default: --discovery-window)
//   m1200           1,200 per minute in fixed minute windows (a burst spends the minute in seconds)
//   halve           100/s, halved to 50/s at 40 s and back to 100/s at 90 s (the issue's schedule)
// For each: seconds until 90% of the limit, steady-state use, 429 share, total time against the ideal; for the
// halving, how soon the lower limit was followed and the restored one found again. What succeeded when comes
// from the sandbox's own per-second timeline; the learned rate is polled from Redis (readRateState) every
// 250 ms and kept in the results (the rate over time).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startSandboxLibrary, stopChild } from '../lib/children.mjs';
import { writeReceiptsCsv } from '../lib/csv.mjs';
import { ingestWithLibrary, logSummary, startWork, waitForRun } from '../lib/pipeline.mjs';
import { DIST, log, round } from '../lib/util.mjs';

const LATENCY_MS = 50;
const WORKERS = 2;
/** The pacer sends this share of the learned rate (config rateHeadroom). */
const HEADROOM = 0.98;

/** Limit in force `s` seconds after the sandbox's schedule started, per second. */
const constant = (perSecond) => () => perSecond;

/** Rows a limit admits over `seconds` (each second's limit, summed). */
const rowsFor = (limit, seconds) => Array.from({ length: seconds }, (_, t) => limit(t)).reduce((a, b) => a + b, 0);

/**
 * The shared-limit cases: a 50/s limit of which others' traffic (the live app's) takes a share that moves
 * (sandbox backgroundTraffic). `bg` is the sandbox's own backgroundShareAt / leftOf, so the limit the figures
 * are measured against is the one the sandbox applied.
 */
function sharedCases(quick, window, bg) {
  const seconds = quick ? 90 : 180;
  const shared = (name, label, traffic, events) => {
    const t = { pattern: 'none', share: 0, baseShare: 0, periodSeconds: 120, burstSeconds: 5, ...traffic };
    const limit = (s) => bg.leftOf(50, bg.backgroundShareAt(t, s));
    return {
      name,
      label: `50/s shared: ${label}, ${window} 1-s windows`,
      knobs: { rateLimitPerSecond: 50, rateLimitWindow: window, backgroundTraffic: t },
      limit,
      rows: rowsFor(limit, seconds),
      windowS: 5,
      settleGoalS: 30,
      events: events ? events(seconds) : [],
      useGoal: 0.9,
    };
  };
  const period = quick ? 40 : 60;
  const burst = quick ? 15 : 20;
  return [
    shared('steady', 'others take 30%', { pattern: 'steady', share: 0.3 }),
    shared('wave', `others take 0-50% in a ${quick ? 60 : 120}-s wave`, { pattern: 'wave', share: 0.5, periodSeconds: quick ? 60 : 120 }),
    shared('bursts', `others take 50% for ${burst} s every ${period} s`, { pattern: 'bursts', share: 0.5, periodSeconds: period, burstSeconds: burst }, (total) => {
      const ev = [];
      for (let at = period; at < total; at += period) ev.push({ at, kind: 'fall' }, { at: at + burst, kind: 'rise' });
      return ev.filter((e) => e.at < total - 5);
    }),
  ];
}

function cases(quick, window, bg) {
  const s = (limit, seconds, name = `s${limit}`) => ({
    name,
    label: `${limit}/s${name === `s${limit}` ? '' : ` for ${seconds >= 120 ? `${seconds / 60} min` : `${seconds} s`}`}, ${window} 1-s windows`,
    knobs: { rateLimitPerSecond: limit, rateLimitWindow: window },
    limit: constant(limit),
    rows: limit * seconds,
    windowS: 5,
    settleGoalS: 30,
  });
  const halveAt = quick ? 20 : 40;
  const backAt = quick ? 45 : 90;
  const endAt = quick ? 65 : 130;
  const halved = (t) => (t >= halveAt && t < backAt ? 50 : 100);
  return [
    s(10, quick ? 30 : 50),
    s(50, quick ? 30 : 50),
    s(200, quick ? 30 : 50),
    s(50, quick ? 60 : 120, 'two50'),
    { ...s(50, quick ? 120 : 600, 'long50'), useGoal: 0.97 },
    {
      name: 'm1200',
      label: '1,200/min, fixed minute windows',
      knobs: { rateLimitPerMinute: 1200, rateLimitWindow: 'fixed' },
      limit: constant(20),
      rows: quick ? 2000 : 3000,
      windowS: 60,
      settleGoalS: 120,
    },
    {
      name: 'halve',
      label: `100/s, 50/s from ${halveAt} s, 100/s from ${backAt} s, ${window} 1-s windows`,
      knobs: {
        rateLimitPerSecond: 100,
        rateLimitWindow: window,
        rateLimitSchedule: [
          { afterSeconds: halveAt, perSecond: 50 },
          { afterSeconds: backAt, perSecond: 100 },
        ],
      },
      limit: halved,
      rows: 100 * halveAt + 50 * (backAt - halveAt) + 100 * (endAt - backAt),
      windowS: 5,
      settleGoalS: 30,
      halveAt,
      backAt,
      events: [
        { at: halveAt, kind: 'fall' },
        { at: backAt, kind: 'rise' },
      ],
    },
    ...sharedCases(quick, window, bg),
  ];
}

export async function discoveryScenario(ctx) {
  const quick = ctx.scale < 1;
  const window = ctx.opts.discoveryWindow ?? 'fixed';
  const { readRateState } = await import(pathToFileURL(join(DIST, 'workers', 'rate', 'sharedRate.js')).href);
  const { RedisKeys } = await import(pathToFileURL(join(DIST, 'redis', 'keys.js')).href);
  const bg = await import(pathToFileURL(join(DIST, 'sandbox', 'background.js')).href);
  const results = { quick, window, latencyMs: LATENCY_MS, workers: WORKERS, cases: {} };
  const only = ctx.opts.discoveryCases;
  for (const c of cases(quick, window, bg).filter((x) => !only || only.includes(x.name))) {
    log(`discovery ${c.name}: ${c.label}, ${c.rows} rows`);
    results.cases[c.name] = await runCase(ctx, c, { readRateState, RedisKeys });
  }
  return results;
}

async function runCase(ctx, c, { readRateState, RedisKeys }) {
  // Started through the library (every knob, whatever flags this build's CLI has); no rate-limit headers.
  const sandbox = await startSandboxLibrary({ ...c.knobs, latencyMs: LATENCY_MS, rateLimitHeaders: 'none' });
  const prefix = ctx.newPrefix(`disc-${c.name}`);
  const runId = `bench-discovery-${c.name}`;
  const file = join(ctx.tmp, `discovery-${c.name}.csv`);
  const workers = [];
  try {
    await writeReceiptsCsv(file, c.rows, { tag: `d${c.name}`, rowsPerUser: 4 });
    const ingest = await ingestWithLibrary(ctx, prefix, runId, file);
    if (ingest.result.queued !== c.rows) throw new Error(`expected ${c.rows} rows queued, the ingester queued ${ingest.result.queued}`);
    // The schedule's clock (and fixed windows) start at the reset, right before the workers.
    await sandbox.reset();
    const startedAt = Date.now();
    for (let i = 0; i < WORKERS; i++) workers.push(startWork(ctx, { prefix, apiUrl: sandbox.url, args: ['--concurrency', '32'] }));

    // The learned rate over time, as status and metrics read it.
    const keys = new RedisKeys(prefix);
    const rates = [];
    const poll = setInterval(() => {
      readRateState(ctx.redis, keys).then(
        (v) =>
          v &&
          rates.push({ t: round((Date.now() - startedAt) / 1000, 2), rate: round(v.rate, 2), window: v.window, phase: v.phase, ...(v.windowEdge ? { edge: v.windowEdge } : {}) }),
        () => undefined,
      );
    }, 250);
    const ledger = new ctx.lib.RunLedger(ctx.redis, prefix, runId);
    let doneAt;
    try {
      await waitForRun(ledger, { workers, timeoutMs: (c.rows / c.limit(0)) * 4000 + 120_000, pollMs: 250 });
      doneAt = Date.now();
    } finally {
      clearInterval(poll);
    }
    const stats = await sandbox.stats();
    const learned = await readRateState(ctx.redis, keys);
    await Promise.all(workers.map((w) => stopChild(w, { signal: 'SIGTERM', graceMs: 20_000 })));
    const figures = analyse(c, stats, rates, (doneAt - startedAt) / 1000);
    figures.learned = learned;
    figures.workerLogs = logSummary(workers);
    figures.decisions = rateDecisions(workers, startedAt);
    log(
      `discovery ${c.name}: 90% after ${figures.secondsTo90 ?? 'never'} s, steady use ${figures.steadyUse}, 429s ${(figures.share429 * 100).toFixed(2)}%, ` +
        `${figures.totalS} s for ${c.rows} rows (ideal ${figures.idealS} s), learned ${round(learned?.rate ?? NaN, 1)}/s per ${learned?.window}` +
        (figures.followDownS !== undefined ? `, followed the halving in ${figures.followDownS} s, back to 90% in ${figures.backUpS} s` : ''),
    );
    return figures;
  } finally {
    await Promise.all(workers.map((w) => stopChild(w, { signal: 'SIGTERM', graceMs: 5000 })));
    await sandbox.stop();
  }
}

/** The figures of one case from the sandbox's per-second timeline (second 0 = the reset before the workers). */
export function analyse(c, stats, rates, wallS) {
  const buckets = stats.timeline?.buckets ?? [];
  const last = buckets.reduce((m, b) => Math.max(m, b.second), 0);
  const ok = new Array(last + 1).fill(0);
  const limited = new Array(last + 1).fill(0);
  const admitted = new Array(last + 1).fill(0);
  for (const b of buckets) {
    ok[b.second] = b.succeeded;
    limited[b.second] = b.rateLimited;
    admitted[b.second] = b.admitted;
  }
  const limitAt = (s) => c.limit(s);
  /** First second (1-based count) from `from` at which the trailing average reaches 90% of the limit. */
  const reach = (from, share = 0.9) => {
    for (let s = from + c.windowS - 1; s <= last; s++) {
      let got = 0;
      let lim = 0;
      for (let k = s - c.windowS + 1; k <= s; k++) {
        got += ok[k] ?? 0;
        lim += limitAt(k);
      }
      if (got >= share * lim) return s + 1 - from;
    }
    return undefined;
  };
  const use = (from, to) => {
    let got = 0;
    let lim = 0;
    for (let s = from; s < to; s++) {
      got += ok[s] ?? 0;
      lim += limitAt(s);
    }
    return lim > 0 ? round(got / lim, 3) : undefined;
  };
  const secondsTo90 = reach(0);
  // Steady state: from settling to the last whole second before the queue ran dry (the last 2 s are the tail).
  const lastBusy = Math.max(0, last - 2);
  const steadyFrom = Math.min(lastBusy, (secondsTo90 ?? last) + (c.windowS === 60 ? 0 : 5));
  const posts = stats.byPath?.['POST /v1/receipts'] ?? stats.requests ?? 0;
  let ideal = 0;
  for (let s = 0, rows = c.rows; rows > 0; s++) {
    const l = limitAt(s);
    ideal += Math.min(1, rows / l);
    rows -= l;
  }
  const figures = {
    label: c.label,
    rows: c.rows,
    secondsTo90,
    settleGoalS: c.settleGoalS,
    useGoal: c.useGoal ?? 0.95,
    steadyFromS: steadyFrom,
    steadyUse: use(steadyFrom, lastBusy),
    share429: posts ? stats.rateLimited / posts : undefined,
    rateLimited: stats.rateLimited,
    posts,
    overlaps: stats.overlaps,
    totalS: round(wallS, 1),
    idealS: round(ideal, 1),
    timeVsIdeal: round(ideal / wallS, 3),
    spread: spreadOf(admitted, steadyFrom, lastBusy, limitAt),
    okPerSecond: ok,
    admittedPerSecond: admitted,
    limitedPerSecond: limited,
    rates,
  };
  if (c.events?.length) {
    // Each change of the limit: after a fall, how soon the learned rate paced at or under the new limit (goal
    // ≤ 10 s); after a rise, how soon 90% of the new limit succeeded again (goal ≤ 30 s); use in each phase.
    figures.events = c.events.map((e, i) => {
      const to = limitAt(e.at);
      const next = c.events[i + 1]?.at ?? lastBusy;
      const out = { at: e.at, kind: e.kind, limit: to, use: use(e.at, next) };
      if (e.kind === 'fall') {
        const down = rates.find((r) => r.t >= e.at && r.rate * HEADROOM <= to * 1.02);
        out.followS = down ? round(down.t - e.at, 2) : undefined;
      } else {
        out.followS = reach(e.at);
      }
      out.limited = sum(limited, e.at, Math.min(next, last + 1));
      return out;
    });
    figures.firstPhaseUse = use(steadyFrom, c.events[0].at);
  }
  if (c.halveAt !== undefined) {
    // Followed: the first moment after the halving from which the learned rate paces at or under the new limit.
    const after = rates.filter((r) => r.t >= c.halveAt);
    const down = after.find((r) => r.rate * HEADROOM <= 50 * 1.02);
    figures.followDownS = down ? round(down.t - c.halveAt, 2) : undefined;
    figures.backUpS = reach(c.backAt);
    figures.use = { before: use(secondsTo90 ?? 0, c.halveAt), halved: use(c.halveAt, c.backAt), after: use(c.backAt, lastBusy) };
    figures.limited = { before: sum(limited, 0, c.halveAt), halved: sum(limited, c.halveAt, c.backAt), after: sum(limited, c.backAt, last + 1) };
  }
  return figures;
}

/**
 * How evenly the requests reached the API: per fixed one-second window of the steady state, what the limit
 * admitted, as a share of the limit and as requests short of it (the sandbox's own per-second count).
 */
export function spreadOf(admitted, from, to, limitAt) {
  const short = [];
  for (let s = from; s < to; s++) short.push(limitAt(s) - (admitted[s] ?? 0));
  if (short.length === 0) return undefined;
  const sorted = [...short].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  const mean = short.reduce((a, b) => a + b, 0) / short.length;
  const sd = Math.sqrt(short.reduce((a, b) => a + (b - mean) ** 2, 0) / short.length);
  // Requests short of the limit per window: 1 is the headroom at 50/s (the pacer aims at 49).
  return { seconds: short.length, shortMedian: q(0.5), shortP5: q(0.05), shortP95: q(0.95), shortMax: sorted[sorted.length - 1], shortMean: round(mean, 2), shortSd: round(sd, 2) };
}

const sum = (list, from, to) => list.slice(from, to).reduce((a, b) => a + b, 0);

/** The rate decisions the workers logged (with BENCH_WORKER_LOG_LEVEL=info or debug), seconds from the start. */
function rateDecisions(workers, startedAt) {
  const out = [];
  for (const [i, w] of workers.entries()) {
    for (const line of w.stderrLines) {
      if (!line.includes('"request rate')) continue;
      try {
        const e = JSON.parse(line);
        out.push({ t: round((e.time - startedAt) / 1000, 2), worker: i, rate: e.rate, from: e.from, reason: e.reason });
      } catch {
        // not a log line
      }
    }
  }
  return out.sort((a, b) => a.t - b.t);
}
