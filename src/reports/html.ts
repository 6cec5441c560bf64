// report.html: one self-contained page drawn from ReportData. It has to open anywhere a report directory is
// copied to (a laptop, an attachment, an air-gapped box), so it loads nothing: inline CSS, charts as inline SVG
// computed here, no script at all. Every piece of run data is escaped on the way in, because app user ids,
// messages and file names come from customer exports and can hold anything, `<script>` included.
import { describeCode, sanitizeMessage } from '../revenuecat/classify.js';
import {
  LATENCY_BUCKETS_MS,
  TIMELINE_BUCKET_SECONDS,
  type FailureGroup,
  type LatencyStats,
  type ReportData,
  type TimelinePoint,
} from './reportData.js';
import type { Summary } from './summary.js';

/** The throughput chart never draws more than this many bins, however long the run (a week is 60,480 buckets). */
export const MAX_TIMELINE_POINTS = 300;
/** Bar charts show this many categories; the rest are summed into one "other" bar. */
const MAX_BARS = 14;
/** Sources listed in the header; an S3 prefix can expand to thousands of objects. */
const MAX_SOURCES_LISTED = 20;
/** App Store bundle ids listed under the cards, most rows first; receipts of many apps are a mistake to fix, not to list. */
const MAX_BUNDLES_LISTED = 5;

// ---------------------------------------------------------------------------------------------------------
// Text

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Safe in element content and in quoted attribute values, HTML and inline SVG alike. */
function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** Messages were sanitised when recorded; again here, because the page is what gets forwarded around. */
function safeMessage(text: string): string {
  return sanitizeMessage(text);
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// A fixed locale, so the page reads the same whichever machine wrote it.
const INT = new Intl.NumberFormat('en-US');

function fmtInt(n: number): string {
  return INT.format(n);
}

function fmtPct(part: number, whole: number): string {
  if (whole <= 0) return '';
  const p = (part / whole) * 100;
  return `${p === 0 || p >= 10 ? p.toFixed(0) : p < 0.1 ? '<0.1' : p.toFixed(1)}%`;
}

/** Rates and axis values: small ones need decimals (a slow run does 0.3 req/s), large ones do not. */
function fmtNum(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 100) return fmtInt(Math.round(v));
  if (Math.abs(v) >= 10) return String(Math.round(v * 10) / 10);
  return String(Math.round(v * 100) / 100);
}

function fmtMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${ms / 1000} s`;
}

function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function parseTime(iso: string | null | undefined): number | undefined {
  if (iso === null || iso === undefined) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
}

/** Times are shown in UTC: a report is read by people in other zones than the machine that wrote it. */
function fmtTime(iso: string | null | undefined): string {
  const t = parseTime(iso);
  if (t === undefined) return iso ? esc(iso) : '—';
  return `${new Date(t).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

// ---------------------------------------------------------------------------------------------------------
// SVG helpers

/** One decimal is plenty for screen coordinates and keeps a 300-point path short. */
function r(n: number): number {
  return Math.round(n * 10) / 10;
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function plotWidth(f: Frame): number {
  return f.width - f.left - f.right;
}

function plotHeight(f: Frame): number {
  return f.height - f.top - f.bottom;
}

/** Every chart gets a <title> and an aria-label, so it has a name for screen readers and as a tooltip. */
function svgOpen(id: string, title: string, width: number, height: number): string {
  return (
    `<svg id="${esc(id)}" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ` +
    `role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg"><title>${esc(title)}</title>`
  );
}

/** A chart with nothing to draw still exists (same id), and says why it is empty. */
function svgEmpty(id: string, title: string, width: number, message: string): string {
  const height = 120;
  return (
    svgOpen(id, title, width, height) +
    `<rect class="empty" x="0.5" y="0.5" width="${width - 1}" height="${height - 1}" rx="6"/>` +
    `<text class="empty-text" x="${width / 2}" y="${height / 2 + 5}" text-anchor="middle">${esc(message)}</text></svg>`
  );
}

/** 0 … ≥max in 1/2/5 × 10^k steps. */
function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag);
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Math.round(v / mag) * mag);
  return ticks.length < 2 ? [0, step] : ticks;
}

function yAxis(f: Frame, ticks: number[], yOf: (v: number) => number, title: string): string {
  const lines = ticks
    .map((v) => {
      const y = r(yOf(v));
      return `<line class="grid" x1="${f.left}" x2="${f.width - f.right}" y1="${y}" y2="${y}"/><text class="tick" x="${f.left - 6}" y="${y + 3.5}" text-anchor="end">${esc(fmtNum(v))}</text>`;
    })
    .join('');
  const cy = f.top + plotHeight(f) / 2;
  return `${lines}<text class="axis-title" transform="translate(11 ${r(cy)}) rotate(-90)" text-anchor="middle">${esc(title)}</text>`;
}

// ---------------------------------------------------------------------------------------------------------
// Horizontal bar chart (outcomes, failure reasons, HTTP statuses)

interface Bar {
  label: string;
  value: number;
  color: string;
  /** shown after the value, e.g. a percentage */
  note?: string;
  /** tooltip; defaults to the label */
  hint?: string;
}

/**
 * One row per bar. Zero bars keep their label (so a reader sees "rejected: 0") but draw no shape, so the number
 * of shapes is the number of categories that happened.
 */
function hbarChart(id: string, title: string, bars: Bar[], width: number, labelWidth: number, row = 26): string {
  const f: Frame = { width, height: 12 + bars.length * row + 8, left: labelWidth, right: 130, top: 12, bottom: 8 };
  const max = Math.max(...bars.map((b) => b.value), 0);
  const maxLabelChars = Math.floor(labelWidth / 6.6);
  const rows = bars.map((b, i) => {
    const y = f.top + i * row;
    const w = max > 0 ? Math.max(b.value > 0 ? 2 : 0, (b.value / max) * plotWidth(f)) : 0;
    const label = truncate(b.label, maxLabelChars);
    const shape =
      b.value > 0
        ? `<rect class="bar" x="${f.left}" y="${y + 4}" width="${r(w)}" height="${row - 8}" rx="2" fill="${b.color}" data-value="${b.value}"><title>${esc(`${b.hint ?? b.label}: ${fmtInt(b.value)}`)}</title></rect>`
        : '';
    const value = `${fmtInt(b.value)}${b.note ? ` (${b.note})` : ''}`;
    return (
      `<g class="bar-row"><text class="bar-label" x="${f.left - 8}" y="${y + row / 2 + 4}" text-anchor="end">${esc(label)}<title>${esc(b.hint ?? b.label)}</title></text>` +
      `${shape}<text class="bar-value" x="${r(f.left + w + 6)}" y="${y + row / 2 + 4}">${esc(value)}</text></g>`
    );
  });
  return `${svgOpen(id, title, f.width, f.height)}<line class="axis" x1="${f.left}" x2="${f.left}" y1="${f.top}" y2="${f.height - f.bottom}"/>${rows.join('')}</svg>`;
}

/** Largest first, at most MAX_BARS, the rest summed: a run with 40 distinct reasons still gives a readable chart. */
function topBars(entries: [string, number][], toBar: (key: string, n: number) => Bar): Bar[] {
  const sorted = entries.filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = sorted.length > MAX_BARS ? sorted.slice(0, MAX_BARS - 1) : sorted;
  const rest = sorted.slice(shown.length);
  const bars = shown.map(([k, n]) => toBar(k, n));
  if (rest.length > 0) {
    const n = rest.reduce((a, [, v]) => a + v, 0);
    bars.push({ label: `${rest.length} others`, value: n, color: '#9e9e9e', hint: rest.map(([k]) => k).join(', ') });
  }
  return bars;
}

// ---------------------------------------------------------------------------------------------------------
// Meanings

/** Reasons that are not RevenueCat codes (see classify.ts and reconcile.ts). */
const REASON_MEANINGS: Readonly<Record<string, string>> = {
  timeout: 'request timed out',
  reset: 'connection reset',
  refused: 'connection refused',
  other: 'network error',
  product_not_in_subscriber: "2xx, but the subscriber does not show the row's product",
  transferred: "2xx, but the subscriber's original_app_user_id is another user",
  malformed_response: '2xx without a valid subscriber object',
};

function reasonMeaning(reason: string): string | undefined {
  const code = /^rc_(\d+)$/.exec(reason);
  if (code?.[1] !== undefined) return describeCode(Number(code[1]))?.meaning;
  const http = /^http_(\d{3})$/.exec(reason);
  if (http?.[1] !== undefined) return `HTTP ${http[1]}`;
  return Object.hasOwn(REASON_MEANINGS, reason) ? REASON_MEANINGS[reason] : undefined;
}

const COLORS = {
  succeeded: '#2e7d32',
  failed: '#c62828',
  rejected: '#ef6c00',
  duplicates: '#78909c',
  already: '#1565c0',
  pending: '#b0bec5',
  held: '#6a1b9a',
  superseded: '#00838f',
  requests: '#1565c0',
  rateLimited: '#d81b60',
  rate: '#263238',
  lookupRate: '#ef6c00',
} as const;

function statusColor(status: string): string {
  const n = Number(status);
  if (!Number.isInteger(n)) return '#6a1b9a'; // timeout / reset / refused
  if (n === 429) return COLORS.rateLimited;
  if (n >= 200 && n < 300) return COLORS.succeeded;
  if (n >= 500) return COLORS.failed;
  return COLORS.rejected;
}

// ---------------------------------------------------------------------------------------------------------
// Sections

function statusBadge(s: Summary): string {
  const label = s.status === 'complete' ? 'complete' : s.status === 'stopped' ? 'stopped' : s.status === 'partial' ? 'canary' : 'in progress';
  return `<span id="run-status" class="badge badge-${esc(s.status)}">${label}</span>`;
}

function renderSources(sources: string[]): string {
  if (sources.length === 0) return '—';
  const shown = sources.slice(0, MAX_SOURCES_LISTED).map((src) => `<li><code>${esc(src)}</code></li>`);
  const more = sources.length > MAX_SOURCES_LISTED ? `<li>… and ${fmtInt(sources.length - MAX_SOURCES_LISTED)} more</li>` : '';
  return `<ul class="sources">${shown.join('')}${more}</ul>`;
}

function renderHeader(data: ReportData): string {
  const s = data.summary;
  const start = parseTime(s.started_at);
  const end = parseTime(s.finished_at);
  // A run without an end is measured up to when this report was made, and says so.
  const until = end ?? parseTime(data.generatedAt);
  const duration = start !== undefined && until !== undefined ? fmtDuration(until - start) + (end === undefined ? ' so far' : '') : '—';
  const fatal = s.fatal
    ? `<div class="fatal" id="fatal" role="alert"><strong>Stopped by a fatal answer</strong> (HTTP ${esc(s.fatal.status)}${s.fatal.code !== undefined ? `, code ${esc(s.fatal.code)}` : ''}, ${fmtTime(s.fatal.at)}): ${esc(safeMessage(s.fatal.message))}<br>Unsent rows stay queued; fix the cause and run the same command again.</div>`
    : '';
  const partial =
    s.status === 'complete'
      ? ''
      : s.status === 'partial' && s.canary
        ? `<p class="partial" id="canary">Canary: ${fmtInt(s.canary.sent)} rows sent (limit ${fmtInt(s.canary.limit)}); the rest of the sources is left for the next run, which is the same command without --limit.</p>`
        : `<p class="partial">Partial report: ${fmtInt(s.rows_pending)} queued rows have no outcome yet.</p>`;
  return `<header>
<h1>Receipt migration <code id="run-id">${esc(s.run_id)}</code> ${statusBadge(s)}</h1>
${fatal}${partial}
<dl class="meta">
<div><dt>Started</dt><dd id="started-at">${fmtTime(s.started_at)}</dd></div>
<div><dt>Finished</dt><dd id="finished-at">${fmtTime(s.finished_at)}</dd></div>
<div><dt>Duration</dt><dd id="duration">${esc(duration)}</dd></div>
<div><dt>Report generated</dt><dd>${fmtTime(data.generatedAt)}</dd></div>
<div class="wide"><dt>Sources (${fmtInt(s.sources.length)})</dt><dd>${renderSources(s.sources)}</dd></div>
</dl>
</header>`;
}

function card(id: string, label: string, value: number, sub = '', tone = ''): string {
  const shown = fmtInt(value);
  // Nine cards share one row at 1200 px: a run of millions needs a smaller figure to stay inside its card.
  const size = shown.length > 9 ? ' xlong' : shown.length > 7 ? ' long' : '';
  return `<div class="card${tone ? ` tone-${tone}` : ''}" id="card-${id}"><div class="card-label" title="${esc(label)}">${esc(label)}</div><div class="card-value${size}" data-value="${value}">${shown}</div><div class="card-sub">${sub ? esc(sub) : '&nbsp;'}</div></div>`;
}

function renderCards(s: Summary): string {
  const ofRead = (n: number): string => (s.rows_read > 0 ? `${fmtPct(n, s.rows_read)} of rows read` : '');
  const rateLimited = s.by_http_status['429'] ?? 0;
  const inProcess = s.by_http_status['529'] ?? 0;
  const answered = [rateLimited > 0 ? `${fmtInt(rateLimited)} answered 429` : '', inProcess > 0 ? `${fmtInt(inProcess)} answered 529 (token in process)` : ''].filter(Boolean).join(', ');
  return `<section class="cards" aria-label="Summary">
${card('rows-read', 'Rows read', s.rows_read, `${fmtInt(s.rows_queued)} queued`)}
${card('succeeded', 'Succeeded', s.rows_succeeded, ofRead(s.rows_succeeded), 'good')}
${card('failed', 'Failed', s.rows_failed, ofRead(s.rows_failed), s.rows_failed > 0 ? 'bad' : '')}
${card('rejected', 'Rejected', s.rows_rejected, s.rows_rejected > 0 ? 'invalid at ingest' : '', s.rows_rejected > 0 ? 'warn' : '')}
${card('duplicates', 'Duplicates', s.rows_duplicate, s.rows_duplicate > 0 ? 'covered by their first row' : '')}
${card('already-migrated', 'Already migrated', s.already_migrated, s.already_migrated > 0 ? 'by an earlier run' : '')}
${s.rows_held > 0 ? card('held', 'Held conflicts', s.rows_held, 'token of another user: see conflicts.csv', 'warn') + '\n' : ''}${card('pending', 'Pending', s.rows_pending, s.rows_pending > 0 ? 'no outcome yet' : '', s.rows_pending > 0 ? 'warn' : '')}
${card('requests-sent', 'Requests sent', s.requests_sent, answered)}
${card('retries', 'Retries', s.retries, s.retries > 0 ? 'retry rounds of failed rows' : '')}
${card('mismatched', 'Not as expected', s.rows_mismatched + (s.verify?.mismatched ?? 0), s.verify ? `verify: ${fmtInt(s.verify.matched)} of ${fmtInt(s.verify.checked)} rows still match` : 'see mismatches.csv', s.rows_mismatched + (s.verify?.mismatched ?? 0) > 0 ? 'warn' : '')}
</section>`;
}

/**
 * What the ingest's survey read of the run's App Store rows (summary.receipts), under the cards: superseded rows
 * were not sent, sandbox receipts were sent but pay nothing, unread tokens were sent as they are. Only for a run
 * with App Store rows: a survey of sources that held none shows nothing.
 */
function renderReceipts(s: Summary): string {
  const r = s.receipts;
  if (!r || r.read + r.unread === 0) return '';
  const item = (id: string, label: string, value: number, note: string): string =>
    `<div><dt>${esc(label)}</dt><dd id="receipts-${id}" data-value="${value}">${fmtInt(value)}</dd><dd class="note">${esc(note)}</dd></div>`;
  const bundles = Object.entries(r.bundles).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const apps = bundles
    .slice(0, MAX_BUNDLES_LISTED)
    .map(([id, n]) => `<code>${esc(id)}</code> ${fmtInt(n)}`)
    .join(', ');
  const more = bundles.length > MAX_BUNDLES_LISTED ? `, … and ${fmtInt(bundles.length - MAX_BUNDLES_LISTED)} more` : '';
  return `<section class="receipts" id="app-store-receipts" aria-label="App Store receipts">
<h2>App Store receipts</h2>
<dl>
${item('read', 'read', r.read, `${fmtInt(r.purchases)} distinct purchases`)}
${item('superseded', 'superseded', s.rows_superseded, 'not sent: a newer receipt of the user carries them (superseded.csv)')}
${item('sandbox', 'sandbox', r.sandbox, 'Apple’s sandbox or Xcode: testers, not customers')}
${item('unread', 'unread', r.unread, 'not readable here: sent as they are')}
${bundles.length > 0 ? `<div class="apps"><dt>apps (${fmtInt(bundles.length)})</dt><dd id="receipts-apps">${apps}${more}</dd></div>` : ''}
</dl>
</section>`;
}

function panel(id: string, heading: string, body: string, extraClass = ''): string {
  return `<section class="panel${extraClass ? ` ${extraClass}` : ''}" id="${id}"><h2>${esc(heading)}</h2>${body}</section>`;
}

function renderOutcomeChart(s: Summary): string {
  const title = 'Outcome of every row read';
  const bars: Bar[] = [
    { label: 'succeeded', value: s.rows_succeeded, color: COLORS.succeeded },
    { label: 'failed', value: s.rows_failed, color: COLORS.failed },
    { label: 'rejected', value: s.rows_rejected, color: COLORS.rejected },
    { label: 'duplicates', value: s.rows_duplicate, color: COLORS.duplicates },
    { label: 'already migrated', value: s.already_migrated, color: COLORS.already },
  ];
  // Held rows (a token another user has) only show when there are some, and so do superseded App Store rows.
  if (s.rows_held > 0) bars.push({ label: 'held (conflict)', value: s.rows_held, color: COLORS.held });
  if (s.rows_superseded > 0) bars.push({ label: 'superseded', value: s.rows_superseded, color: COLORS.superseded, hint: 'superseded: a newer receipt of the same user carries every purchase (not sent)' });
  // Pending only exists in a partial report; a complete run would just show an empty row.
  if (s.rows_pending > 0) bars.push({ label: 'pending', value: s.rows_pending, color: COLORS.pending });
  for (const b of bars) b.note = fmtPct(b.value, s.rows_read);
  const svg = bars.every((b) => b.value === 0) ? svgEmpty('chart-outcomes', title, 540, 'No rows were read.') : hbarChart('chart-outcomes', title, bars, 540, 120, 38);
  return panel('outcomes', 'Outcomes', svg);
}

// --- throughput

interface Bin {
  /** epoch seconds */
  t0: number;
  /** seconds of the run this bin covers (the last one may be shorter) */
  seconds: number;
  requests: number;
  rateLimited: number;
  succeeded: number;
  /** sum and count of the rates recorded in the bin's buckets: the bin's rate is their mean */
  rateSum: number;
  rateCount: number;
  /** the same for the App Store Server API lookups' rate (scope 'apple'), recorded only while rows were looked up */
  lookupSum: number;
  lookupCount: number;
}

/** The rate the workers paced at over a bin (mean of its buckets' recorded rates); undefined when none was recorded. */
function binRate(b: Bin): number | undefined {
  return b.rateCount > 0 ? b.rateSum / b.rateCount : undefined;
}

/** The lookups' rate over a bin, likewise. */
function binLookupRate(b: Bin): number | undefined {
  return b.lookupCount > 0 ? b.lookupSum / b.lookupCount : undefined;
}

/**
 * Sums the timeline into at most `max` equal bins spanning the whole run. The ledger only stores buckets that
 * saw activity, so a bin with no bucket is a quiet stretch, drawn as zero rather than as a line bridging it.
 * Summing (not sampling) keeps every request and every 429 in the picture.
 */
function binTimeline(points: TimelinePoint[], max: number): Bin[] {
  let tMin = Infinity;
  let tMax = -Infinity;
  for (const p of points) {
    if (p.t < tMin) tMin = p.t;
    if (p.t > tMax) tMax = p.t;
  }
  const B = TIMELINE_BUCKET_SECONDS;
  const buckets = Math.floor((tMax - tMin) / B) + 1;
  const perBin = Math.ceil(buckets / max);
  const width = perBin * B;
  const n = Math.ceil(buckets / perBin);
  const tEnd = tMax + B;
  const bins: Bin[] = Array.from({ length: n }, (_, i) => {
    const t0 = tMin + i * width;
    return { t0, seconds: Math.min(width, tEnd - t0), requests: 0, rateLimited: 0, succeeded: 0, rateSum: 0, rateCount: 0, lookupSum: 0, lookupCount: 0 };
  });
  for (const p of points) {
    const bin = bins[Math.min(n - 1, Math.floor((p.t - tMin) / width))];
    if (!bin) continue;
    bin.requests += p.requests;
    bin.rateLimited += p.rateLimited;
    bin.succeeded += p.succeeded;
    if (p.rate !== undefined && Number.isFinite(p.rate)) {
      bin.rateSum += p.rate;
      bin.rateCount += 1;
    }
    if (p.lookupRate !== undefined && Number.isFinite(p.lookupRate)) {
      bin.lookupSum += p.lookupRate;
      bin.lookupCount += 1;
    }
  }
  return bins;
}

/** Time ticks at a round step, at most ~8 of them. */
function timeTicks(t0: number, t1: number): { t: number; label: string }[] {
  const steps = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
  const span = t1 - t0;
  const step = steps.find((s) => span / s <= 8) ?? Math.ceil(span / 8 / 86400) * 86400;
  const label = (t: number): string => {
    const iso = new Date(t * 1000).toISOString();
    if (span > 86400) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
    return step < 60 ? iso.slice(11, 19) : iso.slice(11, 16);
  };
  const ticks: { t: number; label: string }[] = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push({ t, label: label(t) });
  return ticks;
}

/** A step line: flat across each bin, as the data is (a count per interval, not a sample at an instant). */
function stepPath(bins: Bin[], xOf: (t: number) => number, yOf: (v: number) => number, value: (b: Bin) => number): string {
  const parts: string[] = [];
  for (const [i, b] of bins.entries()) {
    const y = r(yOf(value(b) / b.seconds));
    parts.push(i === 0 ? `M${r(xOf(b.t0))} ${y}` : `V${y}`, `H${r(xOf(b.t0 + b.seconds))}`);
  }
  return parts.join('');
}

/**
 * The rate line: a step per bin that has a recorded rate. A bin without one (no worker was sending then) breaks
 * the line rather than bridging it, like the quiet stretches of the request line drop to zero.
 */
function ratePath(bins: Bin[], xOf: (t: number) => number, yOf: (v: number) => number, rateOf: (b: Bin) => number | undefined = binRate): { d: string; values: number[] } {
  const parts: string[] = [];
  const values: number[] = [];
  let open = false;
  for (const b of bins) {
    const rate = rateOf(b);
    if (rate === undefined) {
      open = false;
      continue;
    }
    const y = r(yOf(rate));
    parts.push(open ? `V${y}` : `M${r(xOf(b.t0))} ${y}`, `H${r(xOf(b.t0 + b.seconds))}`);
    values.push(Math.round(rate * 100) / 100);
    open = true;
  }
  return { d: parts.join(''), values };
}

function renderThroughputChart(data: ReportData): string {
  const title = 'Requests and successes per second over the run, the learned request rate, and 429 answers';
  const id = 'chart-throughput';
  const points = data.timeline.filter((p) => Number.isFinite(p.t));
  if (points.length === 0 || points.every((p) => p.requests === 0 && p.succeeded === 0 && p.failed === 0)) {
    return panel('throughput', 'Throughput', svgEmpty(id, title, 1120, 'No requests were sent.'), 'full');
  }
  const bins = binTimeline(points, MAX_TIMELINE_POINTS);
  const first = bins[0] as Bin;
  const last = bins[bins.length - 1] as Bin;
  const t0 = first.t0;
  const t1 = last.t0 + last.seconds;
  const f: Frame = { width: 1120, height: 300, left: 64, right: 20, top: 16, bottom: 44 };
  // The rate shares the per-second axis (it is requests/s too), so a rate above what was sent still fits.
  const yMaxData = Math.max(...bins.map((b) => Math.max(b.requests / b.seconds, b.succeeded / b.seconds, binRate(b) ?? 0, binLookupRate(b) ?? 0)));
  const ticks = niceTicks(yMaxData);
  const yMax = ticks[ticks.length - 1] ?? 1;
  const xOf = (t: number): number => f.left + ((t - t0) / (t1 - t0)) * plotWidth(f);
  const yOf = (v: number): number => f.top + plotHeight(f) - (v / yMax) * plotHeight(f);
  const base = f.top + plotHeight(f);

  const requestsLine = stepPath(bins, xOf, yOf, (b) => b.requests);
  const area = `${requestsLine}V${base}H${r(xOf(t0))}Z`;
  const successLine = stepPath(bins, xOf, yOf, (b) => b.succeeded);
  // 429s share the per-second axis, but get at least 2 px: a handful against thousands of requests would
  // otherwise vanish, and a reader looking for why the rate dipped needs to see where they were.
  const limited = bins
    .filter((b) => b.rateLimited > 0)
    .map((b) => {
      const x = xOf(b.t0);
      const w = Math.max(1, xOf(b.t0 + b.seconds) - x - 0.5);
      const h = Math.max(2, base - yOf(b.rateLimited / b.seconds));
      const rate = binRate(b);
      const pacedAt = rate === undefined ? '' : `, paced at ${fmtNum(rate)} req/s`;
      return `<rect class="rate-limited" x="${r(x)}" y="${r(base - h)}" width="${r(w)}" height="${r(h)}" fill="${COLORS.rateLimited}"><title>${esc(`${fmtInt(b.rateLimited)} × 429 from ${new Date(b.t0 * 1000).toISOString().slice(11, 19)} UTC${pacedAt}`)}</title></rect>`;
    })
    .join('');
  const xTicks = timeTicks(t0, t1)
    .map(({ t, label }) => {
      const x = r(xOf(t));
      return `<line class="axis" x1="${x}" x2="${x}" y1="${base}" y2="${base + 5}"/><text class="tick" x="${x}" y="${base + 18}" text-anchor="middle">${esc(label)}</text>`;
    })
    .join('');

  // Drawn over the 429 bars, so a step down of the rate reads against the 429s that caused it. Runs written
  // before the rate was recorded have none: the chart says so rather than leaving the reader to look for it.
  const rate = ratePath(bins, xOf, yOf);
  const rateLine =
    rate.values.length > 0
      ? `<path class="rate-line" d="${rate.d}" fill="none" stroke="${COLORS.rate}" stroke-width="1.75" stroke-dasharray="6 3" stroke-linejoin="round" data-points="${rate.values.length}" data-values="${rate.values.join(' ')}"/>`
      : `<text class="rate-absent" x="${f.width - f.right - 4}" y="${f.top + 12}" text-anchor="end">No learned rate was recorded for this run (it predates rate discovery).</text>`;
  // Beside RevenueCat's: the App Store Server API lookups' rate, only for a run whose rows were looked up (a
  // lookup is not a request to RevenueCat: the request and 429 figures do not count it).
  const lookups = ratePath(bins, xOf, yOf, binLookupRate);
  const lookupLine =
    lookups.values.length > 0
      ? `<path class="lookup-rate-line" d="${lookups.d}" fill="none" stroke="${COLORS.lookupRate}" stroke-width="1.75" stroke-dasharray="2 3" stroke-linejoin="round" data-points="${lookups.values.length}" data-values="${lookups.values.join(' ')}"/>`
      : '';

  const svg =
    svgOpen(id, title, f.width, f.height) +
    yAxis(f, ticks, yOf, 'per second') +
    `<path class="requests-area" d="${area}" fill="${COLORS.requests}" fill-opacity="0.14"/>` +
    `<path class="requests-line" d="${requestsLine}" fill="none" stroke="${COLORS.requests}" stroke-width="1.5" data-points="${bins.length}"/>` +
    `<path class="success-line" d="${successLine}" fill="none" stroke="${COLORS.succeeded}" stroke-width="1.5" data-points="${bins.length}"/>` +
    limited +
    rateLine +
    lookupLine +
    `<line class="axis" x1="${f.left}" x2="${f.width - f.right}" y1="${base}" y2="${base}"/>${xTicks}` +
    `<text class="axis-title" x="${f.left + plotWidth(f) / 2}" y="${f.height - 6}" text-anchor="middle">time (UTC)</text></svg>`;

  const totalRequests = points.reduce((a, p) => a + p.requests, 0);
  const total429 = points.reduce((a, p) => a + p.rateLimited, 0);
  // reduce, not Math.max(...): a long run has more points than a call may take arguments.
  const peak = points.reduce((m, p) => Math.max(m, p.requests), 0) / TIMELINE_BUCKET_SECONDS;
  const binSeconds = bins.length > 1 ? first.seconds : TIMELINE_BUCKET_SECONDS;
  const legend = `<div class="legend">
<span><i style="background:${COLORS.requests}"></i>requests/s</span>
<span><i style="background:${COLORS.succeeded}"></i>successes/s</span>
<span><i style="background:${COLORS.rateLimited}"></i>429 (rate limited)/s</span>
${rate.values.length > 0 ? `<span class="legend-rate"><i style="background:none;border-top:2px dashed ${COLORS.rate};height:0;border-radius:0;vertical-align:3px"></i>learned rate (requests/s)</span>` : `<span class="legend-rate">learned rate: not recorded</span>`}
${lookups.values.length > 0 ? `<span class="legend-lookup-rate"><i style="background:none;border-top:2px dotted ${COLORS.lookupRate};height:0;border-radius:0;vertical-align:3px"></i>App Store Server API lookups' rate (lookups/s)</span>` : ''}
</div>`;
  const rateNote = `${rate.values.length > 0 ? ` ${rateSummary(rate.values)}` : ''}${lookups.values.length > 0 ? ` ${lookupRateSummary(lookups.values)}` : ''}`;
  const caption = `<p class="caption">Each step is the average over ${esc(fmtDuration(binSeconds * 1000))}. ${fmtInt(totalRequests)} requests, peak ${esc(fmtNum(peak))} req/s over ${TIMELINE_BUCKET_SECONDS} s, ${fmtInt(total429)} answered 429 (rate limit).${rateNote}</p>`;
  return panel('throughput', 'Throughput and learned rate', legend + svg + caption, 'full');
}

/** One sentence on the rate line: where it ended and its range, the figures a reader checks against the 429s. */
function rateSummary(values: number[]): string {
  const last = values[values.length - 1] ?? 0;
  const low = values.reduce((m, v) => Math.min(m, v), Infinity);
  const high = values.reduce((m, v) => Math.max(m, v), 0);
  return esc(`The learned rate (what the workers paced requests at: discovered, or capped by --rate) ranged ${fmtNum(low)}–${fmtNum(high)} req/s and ended at ${fmtNum(last)} req/s.`);
}

/** The same for the lookups' rate line, beside RevenueCat's. */
function lookupRateSummary(values: number[]): string {
  const last = values[values.length - 1] ?? 0;
  const low = values.reduce((m, v) => Math.min(m, v), Infinity);
  const high = values.reduce((m, v) => Math.max(m, v), 0);
  return esc(`The App Store Server API lookups' rate (their own limit, capped by --apple-rate) ranged ${fmtNum(low)}–${fmtNum(high)} lookups/s and ended at ${fmtNum(last)} lookups/s.`);
}

// --- latency

// Bare numbers are ms, the rest carry their unit: twelve labels in half a page leave no room for "ms" on each.
const LATENCY_LABELS = [
  ...LATENCY_BUCKETS_MS.map((ms) => (ms < 1000 ? String(ms) : fmtMs(ms).replace(' ', ''))),
  `>${fmtMs(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1] ?? 0).replace(' ', '')}`,
];

function fmtPercentile(v: number | null, count: number): string {
  if (count === 0) return '—';
  // null with requests means above the last bound; percentiles are bucket upper bounds, hence "≤".
  if (v === null) return `> ${fmtMs(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1] ?? 0)}`;
  return `≤ ${fmtMs(v)}`;
}

function renderPercentiles(l: LatencyStats): string {
  const items = (['p50', 'p90', 'p95', 'p99'] as const).map(
    (p) => `<div><dt>${p}</dt><dd id="latency-${p}">${esc(fmtPercentile(l[p], l.count))}</dd></div>`,
  );
  return `<dl class="percentiles">${items.join('')}<div><dt>requests</dt><dd id="latency-count">${fmtInt(l.count)}</dd></div></dl>`;
}

function renderLatencyChart(l: LatencyStats): string {
  const title = 'Request latency histogram';
  const id = 'chart-latency';
  const counts = LATENCY_LABELS.map((_, i) => l.buckets[i] ?? 0);
  const total = counts.reduce((a, b) => a + b, 0);
  if (l.count === 0 && total === 0) return panel('latency', 'Request latency', renderPercentiles(l) + svgEmpty(id, title, 540, 'No requests were sent.'));

  const f: Frame = { width: 540, height: 260, left: 66, right: 10, top: 22, bottom: 44 };
  const ticks = niceTicks(Math.max(...counts));
  const yMax = ticks[ticks.length - 1] ?? 1;
  const yOf = (v: number): number => f.top + plotHeight(f) - (v / yMax) * plotHeight(f);
  const slot = plotWidth(f) / counts.length;
  const base = f.top + plotHeight(f);
  // Which percentiles fall in which bucket: marked above its bar, several sharing a bucket on one label.
  const marks = new Map<number, string[]>();
  for (const p of ['p50', 'p90', 'p95', 'p99'] as const) {
    const v = l[p];
    const i = v === null ? LATENCY_BUCKETS_MS.length : LATENCY_BUCKETS_MS.indexOf(v as (typeof LATENCY_BUCKETS_MS)[number]);
    if (i >= 0) marks.set(i, [...(marks.get(i) ?? []), p]);
  }
  const bars = counts
    .map((n, i) => {
      const x = f.left + i * slot;
      const label = `<text class="tick" x="${r(x + slot / 2)}" y="${base + 16}" text-anchor="middle">${esc(LATENCY_LABELS[i] ?? '')}</text>`;
      const mark = marks.get(i);
      // At either end the label is anchored inward, so "p50 p90 p95 p99" over the last bucket stays inside.
      const [mx, anchor] = i === 0 ? [x, 'start'] : i === counts.length - 1 ? [x + slot, 'end'] : [x + slot / 2, 'middle'];
      const markText = mark ? `<text class="pmark" x="${r(mx)}" y="${r(Math.min(yOf(n), base) - 5)}" text-anchor="${anchor}">${esc(mark.join(' '))}</text>` : '';
      if (n === 0) return label + markText;
      const h = Math.max(1, base - yOf(n));
      return `<rect class="bar" x="${r(x + 3)}" y="${r(base - h)}" width="${r(slot - 6)}" height="${r(h)}" fill="#5c6bc0" data-value="${n}"><title>${esc(`${LATENCY_LABELS[i] ?? ''}: ${fmtInt(n)} requests`)}</title></rect>${label}${markText}`;
    })
    .join('');
  const svg =
    svgOpen(id, title, f.width, f.height) +
    yAxis(f, ticks, yOf, 'requests') +
    `<line class="axis" x1="${f.left}" x2="${f.width - f.right}" y1="${base}" y2="${base}"/>${bars}` +
    `<text class="axis-title" x="${f.left + plotWidth(f) / 2}" y="${f.height - 6}" text-anchor="middle">latency in ms (upper bound of each bucket)</text></svg>`;
  return panel('latency', 'Request latency', renderPercentiles(l) + svg);
}

// --- failures

function renderErrorCharts(s: Summary): string {
  const reasonTitle = 'Failed rows by reason';
  const reasonBars = topBars(Object.entries(s.by_error_code), (reason, n) => {
    const meaning = reasonMeaning(reason);
    return { label: meaning ? `${reason} · ${meaning}` : reason, value: n, color: COLORS.failed, note: fmtPct(n, s.rows_failed) };
  });
  const reasons =
    reasonBars.length === 0 ? svgEmpty('chart-errors', reasonTitle, 1120, 'No row failed.') : hbarChart('chart-errors', reasonTitle, reasonBars, 1120, 460);

  const statusTitle = 'Requests by HTTP status or network error';
  const requests = Object.values(s.by_http_status).reduce((a, b) => a + b, 0);
  const statusBars = topBars(Object.entries(s.by_http_status), (status, n) => ({
    label: /^\d+$/.test(status) ? `HTTP ${status}` : status,
    value: n,
    color: statusColor(status),
    note: fmtPct(n, requests),
  }));
  const statuses =
    statusBars.length === 0 ? svgEmpty('chart-http-status', statusTitle, 540, 'No requests were sent.') : hbarChart('chart-http-status', statusTitle, statusBars, 540, 110);
  return panel('failures-by-reason', 'Failures by reason', reasons, 'full') + panel('http-status', 'Requests by HTTP status', statuses);
}

// --- tables

function renderFailureTable(groups: FailureGroup[], s: Summary): string {
  if (groups.length === 0) return panel('top-failures', 'Top failure reasons', '<p class="none">No row failed.</p>', 'full');
  const reasons = Object.keys(s.by_error_code).length;
  const note = reasons > groups.length ? `<p class="caption">The ${groups.length} largest of ${fmtInt(reasons)} reasons; every failed row is in <code>failed.csv</code>.</p>` : '<p class="caption">Every failed row is in <code>failed.csv</code>, which can be fed back to <code>rc-migrate run</code>.</p>';
  const bodies = groups.map((g) => {
    const meaning = g.meaning ?? reasonMeaning(g.reason);
    const head = `<tr class="group"><th colspan="4"><code>${esc(g.reason)}</code> <span class="count">${fmtInt(g.count)} ${g.count === 1 ? 'row' : 'rows'}</span>${meaning ? ` <span class="meaning">${esc(meaning)}</span>` : ''}</th></tr>`;
    const rows = g.examples.map(
      (e) => `<tr><td class="where">${esc(`${e.src}:${e.line}`)}</td><td class="user">${esc(e.app_user_id)}</td><td class="token"><code>${esc(e.token)}</code></td><td>${esc(safeMessage(e.message))}</td></tr>`,
    );
    return `<tbody>${head}${rows.join('')}</tbody>`;
  });
  const table = `<table class="failures"><thead><tr><th>Where (source:line)</th><th>App User ID</th><th>Token (masked)</th><th>Message</th></tr></thead>${bodies.join('')}</table>`;
  return panel('top-failures', 'Top failure reasons', table + note, 'full');
}

function renderRejectionTable(data: ReportData): string {
  const groups = data.topRejections;
  if (groups.length === 0) return panel('top-rejections', 'Top rejection reasons', '<p class="none">No row was rejected.</p>', 'full');
  const rows = groups.map((g) => {
    const places = g.examples.map((e) => `<code>${esc(`${e.src}:${e.line}`)}</code>`).join(', ');
    return `<tr><td>${esc(g.reason)}</td><td class="num">${fmtInt(g.count)}</td><td class="where">${places}</td></tr>`;
  });
  const table = `<table class="rejections"><thead><tr><th>Reason</th><th class="num">Rows</th><th>For example</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  return panel('top-rejections', 'Top rejection reasons', `${table}<p class="caption">Rejected rows were never sent; all of them are in <code>rejected.csv</code>.</p>`, 'full');
}

function renderReconciliation(s: Summary): string {
  const rc = s.reconciliation;
  const rows: [string, number, string][] = [
    ['product confirmed', rc.product_confirmed, "the subscriber RevenueCat returned shows the row's product"],
    ['product not checked', rc.product_not_checked, 'the row named no product, so only the user was checked'],
    ['product not in subscriber', rc.product_not_in_subscriber, 'answered 2xx but the product is missing: counted as failed'],
    ['transferred', rc.transferred, "the subscriber's original_app_user_id is another user: counted as failed"],
  ];
  const body = rows.map(([name, n, what]) => `<tr><td>${esc(name)}</td><td class="num">${fmtInt(n)}</td><td>${esc(what)}</td></tr>`).join('');
  return panel('reconciliation', 'Reconciliation', `<table class="reconciliation"><thead><tr><th>Check</th><th class="num">Rows</th><th>Meaning</th></tr></thead><tbody>${body}</tbody></table>`);
}

// ---------------------------------------------------------------------------------------------------------
// Page

const STYLE = `
:root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--panel:#fff}
*{box-sizing:border-box}
html{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
main{max-width:1200px;margin:0 auto;padding:24px 24px 40px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.92em}
h1{font-size:22px;margin:0 0 12px;display:flex;align-items:center;gap:10px;flex-wrap:wrap}
h1 code{font-size:20px;background:#e4e7eb;padding:1px 8px;border-radius:4px;word-break:break-all}
h2{font-size:15px;margin:0 0 10px}
.badge{font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.04em;padding:3px 10px;border-radius:999px;color:#fff}
.badge-complete{background:#2e7d32}.badge-in_progress{background:#1565c0}.badge-stopped{background:#c62828}.badge-partial{background:#6a1b9a}
.fatal{background:#fdecea;border:1px solid #f5c2c0;color:#8a1c1c;padding:10px 14px;border-radius:6px;margin:0 0 12px}
.partial{color:#1565c0;margin:0 0 12px}
.meta{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:8px 24px;margin:0 0 18px}
.meta div{min-width:0}.meta .wide{grid-column:1/-1}
dt{color:var(--muted);font-size:12px}dd{margin:0}
.sources{margin:0;padding:0;list-style:none;display:flex;flex-wrap:wrap;gap:4px 16px}
.sources code{overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(110px,1fr));gap:8px;margin:0 0 16px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:10px 8px;border-top:3px solid #9aa5b1;min-width:0}
.card.tone-good{border-top-color:#2e7d32}.card.tone-bad{border-top-color:#c62828}.card.tone-warn{border-top-color:#ef6c00}
.card-label{color:var(--muted);font-size:11.5px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.card-value{font-size:22px;line-height:30px;font-weight:650;font-variant-numeric:tabular-nums;white-space:nowrap}.card-value.long{font-size:18px}.card-value.xlong{font-size:15px}
.card-sub{color:var(--muted);font-size:11px;min-height:1.3em}
.receipts{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:10px 12px;margin:0 0 16px}
.receipts h2{font-size:13px;margin:0 0 6px}
.receipts dl{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:6px 24px;margin:0}.receipts dl div{min-width:0}
.receipts dd{font-variant-numeric:tabular-nums}.receipts dd[data-value]{font-size:17px;font-weight:650}
.receipts dd.note{color:var(--muted);font-size:11px}.receipts .apps{grid-column:1/-1}.receipts .apps code{overflow-wrap:anywhere}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:14px 16px;min-width:0;break-inside:avoid}
.panel.full{grid-column:1/-1}
svg.chart{display:block;width:100%;height:auto;overflow:visible}
svg text{font-family:inherit;font-size:11px;fill:#3e4c59}
svg .tick{fill:var(--muted);font-variant-numeric:tabular-nums}
svg .axis-title{fill:var(--muted);font-size:11px}
svg .grid{stroke:#eef0f3}svg .axis{stroke:#9aa5b1}
svg .bar-value{font-variant-numeric:tabular-nums}
svg .pmark{font-weight:600;fill:#283593}
svg .empty{fill:#fafbfc;stroke:var(--line);stroke-dasharray:4 4}
svg .empty-text{font-size:14px;fill:var(--muted)}
svg .rate-absent{font-size:12px;fill:var(--muted);font-style:italic}
.legend{display:flex;gap:18px;font-size:12px;color:var(--muted);margin:-4px 0 6px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-2px}
.caption{color:var(--muted);font-size:12px;margin:8px 0 0}
.percentiles{display:flex;gap:22px;margin:0 0 8px}
.percentiles dd{font-size:16px;font-weight:600;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
thead th{color:var(--muted);font-weight:600;font-size:12px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.group th{background:#f5f7fa;font-weight:600;padding-top:8px}
tr.group .count{color:#c62828;margin-left:8px}tr.group .meaning{color:var(--muted);font-weight:400;margin-left:8px}
td.where,td.user{overflow-wrap:anywhere}
td.token code{color:var(--muted)}
.failures td:nth-child(1){width:22%}.failures td:nth-child(2){width:18%}.failures td:nth-child(3){width:16%}
.none{color:var(--muted);margin:0}
footer{color:var(--muted);font-size:12px;margin-top:20px}
@media (max-width:800px){.grid{grid-template-columns:1fr}.meta,.receipts dl{grid-template-columns:repeat(2,minmax(0,1fr))}}
@media print{body{background:#fff;font-size:12px}main{max-width:none;padding:0}.panel,.card{border-color:#ccc}.grid{gap:10px}h1 code{background:none;padding:0}}
`;

/** The whole page, one string: write it next to summary.json as report.html. */
export function renderReportHtml(data: ReportData): string {
  const s = data.summary;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>rc-migrate report · ${esc(s.run_id)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${renderHeader(data)}
${renderCards(s)}
${renderReceipts(s)}
<div class="grid">
${renderOutcomeChart(s)}
${renderLatencyChart(data.latency)}
${renderThroughputChart(data)}
${renderErrorCharts(s)}
${renderReconciliation(s)}
${renderFailureTable(data.topFailures, s)}
${renderRejectionTable(data)}
</div>
<footer>Written by rc-migrate from the run ledger at ${fmtTime(data.generatedAt)}. Tokens are masked; the CSV files next to this page hold every row.</footer>
</main>
</body>
</html>
`;
}
