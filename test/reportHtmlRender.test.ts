// report.html rendered without a browser: the edge cases (an empty run, one bucket, a week-long timeline, a
// stopped run) and escaping. The page as Chromium draws it: reportHtml.test.ts.
import { describe, expect, it } from 'vitest';
import { renderReportHtml, MAX_TIMELINE_POINTS } from '../src/reports/html.js';
import type { TimelinePoint } from '../src/reports/reportData.js';
import { emptyRun, emptySummary, realisticRun, T0, timeline, XSS_USER } from './support/reportRuns.js';

/** The learned-rate line of a rendered page: its path, its points and the values it says it draws. */
function rateLine(html: string, cls = 'rate-line'): { d: string; points: number; values: number[] } {
  const tag = new RegExp(`<path class="${cls}"[^>]*>`).exec(html)?.[0] ?? '';
  const attr = (name: string): string => new RegExp(`${name}="([^"]*)"`).exec(tag)?.[1] ?? '';
  return { d: attr(' d'), points: Number(attr('data-points')), values: attr('data-values').split(' ').filter(Boolean).map(Number) };
}

/** The y of each step of a step path (M x y, then V y), in order. */
function stepYs(d: string): number[] {
  return [...d.matchAll(/M[\d.]+ ([\d.]+)|V([\d.]+)/g)].map((m) => Number(m[1] ?? m[2]));
}

describe('report.html without a browser', () => {
  it('renders an empty run and says no requests were sent', () => {
    const html = renderReportHtml(emptyRun());
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('No requests were sent.');
    expect(html).toContain('No rows were read.');
    for (const id of ['chart-outcomes', 'chart-throughput', 'chart-latency', 'chart-errors', 'chart-http-status']) expect(html).toContain(`id="${id}"`);
    expect(html).toContain('id="latency-p95">—<');
  });

  it('escapes run data and references nothing outside the file', () => {
    const html = renderReportHtml(realisticRun());
    expect(html).not.toContain(XSS_USER);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>march');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toMatch(/<(script|link|img|iframe|object|embed)\b|\b(src|href)="|url\(|@import/i);
  });

  it('draws a one-bucket run', () => {
    const data = emptyRun();
    data.timeline = [{ t: T0, requests: 5, rateLimited: 1, succeeded: 4, failed: 0 }];
    data.summary = emptySummary({ rows_read: 4, rows_queued: 4, rows_succeeded: 4, requests_sent: 5, by_http_status: { '200': 4, '429': 1 } });
    const html = renderReportHtml(data);
    const d = /class="requests-line" d="([^"]+)"/.exec(html)?.[1] ?? '';
    expect(d.match(/H/g)).toHaveLength(1);
    expect(html).toContain('class="rate-limited"');
  });

  it(`downsamples a week-long timeline to at most ${MAX_TIMELINE_POINTS} points, keeping every request`, () => {
    const data = emptyRun();
    // A week of buckets with a gap in the middle (a run resumed the next day).
    data.timeline = timeline(60_480).filter((p) => p.t < T0 + 86_400 || p.t > T0 + 2 * 86_400);
    const html = renderReportHtml(data);
    const d = /class="requests-line" d="([^"]+)"/.exec(html)?.[1] ?? '';
    const steps = d.match(/H/g)?.length ?? 0;
    expect(steps).toBeGreaterThan(200);
    expect(steps).toBeLessThanOrEqual(MAX_TIMELINE_POINTS);
    const total = data.timeline.reduce((a, p) => a + p.requests, 0);
    expect(html).toContain(`${total.toLocaleString('en-US')} requests`);
    expect(html.length).toBeLessThan(200_000);
  });

  it('draws the learned rate as a line on the per-second axis, one step per bucket, with the 429s under it', () => {
    const data = emptyRun();
    data.timeline = timeline(40, true);
    const html = renderReportHtml(data);
    const line = rateLine(html);
    const rates = data.timeline.map((p) => p.rate);
    expect(rates.every((v) => v !== undefined)).toBe(true);
    expect(new Set(rates).size).toBeGreaterThan(3); // the sample steps down at the 429s and climbs back
    expect(line.points).toBe(40);
    expect(line.values).toEqual(rates);
    expect(line.d.match(/H/g)).toHaveLength(40);
    expect(line.d.match(/M/g)).toHaveLength(1);
    // Drawn on a linear axis shared with requests/s: y falls by the same pixels per req/s at every step (up to the
    // 0.1 px the coordinates are rounded to), so a higher rate is higher on the page.
    const ys = stepYs(line.d);
    expect(ys).toHaveLength(40);
    const lo = line.values.indexOf(Math.min(...line.values));
    const hi = line.values.indexOf(Math.max(...line.values));
    const pxPerUnit = ((ys[lo] ?? 0) - (ys[hi] ?? 0)) / ((line.values[hi] ?? 0) - (line.values[lo] ?? 0));
    expect(pxPerUnit).toBeGreaterThan(5);
    for (const [i, y] of ys.entries()) expect(Math.abs(y - ((ys[hi] ?? 0) + ((line.values[hi] ?? 0) - (line.values[i] ?? 0)) * pxPerUnit))).toBeLessThan(0.25);
    // The 429s are drawn in the same chart and their tooltips name the rate paced at when they came.
    const limited = data.timeline.filter((p) => p.rateLimited > 0);
    expect(html.match(/class="rate-limited"/g)).toHaveLength(limited.length);
    for (const p of limited) expect(html).toContain(`paced at ${String(p.rate)} req/s`);
    expect(html).toContain('learned rate (requests/s)');
    expect(html).toContain(`ranged ${Math.min(...line.values)}–${Math.max(...line.values)} req/s and ended at ${line.values[39]} req/s`);
    expect(html).not.toContain('class="rate-absent"');
  });

  it('breaks the rate line where no rate was recorded, and averages the rate when it downsamples', () => {
    const data = emptyRun();
    // 600 buckets: drawn in pairs (300 bins); no rate in buckets 100–139 (no worker was sending then).
    data.timeline = timeline(600, true).map((p, i): TimelinePoint => (i >= 100 && i < 140 ? { ...p, rate: undefined } : p));
    const line = rateLine(renderReportHtml(data));
    expect(line.d.match(/M/g)).toHaveLength(2);
    expect(line.points).toBe(300 - 20);
    const expected: number[] = [];
    for (let bin = 0; bin < 300; bin++) {
      const rates = data.timeline.slice(bin * 2, bin * 2 + 2).flatMap((p) => (p.rate === undefined ? [] : [p.rate]));
      if (rates.length > 0) expected.push(Math.round((rates.reduce((a, b) => a + b, 0) / rates.length) * 100) / 100);
    }
    expect(line.values).toEqual(expected);
  });

  it("draws the App Store Server API lookups' rate beside RevenueCat's, only for a run with lookups", () => {
    const data = emptyRun();
    // Lookups in buckets 5–19 only (the run's transaction-id rows), at a rate that climbs, then is cut by a 429.
    data.timeline = timeline(40, true).map((p, i): TimelinePoint => (i >= 5 && i < 20 ? { ...p, lookupRate: i < 15 ? 5 + i : 9.5 } : p));
    const html = renderReportHtml(data);
    const lookups = rateLine(html, 'lookup-rate-line');
    const expected = data.timeline.flatMap((p) => (p.lookupRate === undefined ? [] : [p.lookupRate]));
    expect(lookups.points).toBe(15);
    expect(lookups.values).toEqual(expected);
    expect(lookups.d.match(/M/g)).toHaveLength(1);
    // On the same per-second axis as RevenueCat's rate: equal values, equal heights.
    const rc = rateLine(html);
    expect(rc.points).toBe(40);
    const rcYs = stepYs(rc.d);
    const lookupYs = stepYs(lookups.d);
    const yMaxOf = (ys: number[], vs: number[]): number => ys[vs.indexOf(Math.max(...vs))] ?? NaN;
    const pxPerUnit = ((rcYs[rc.values.indexOf(Math.min(...rc.values))] ?? 0) - yMaxOf(rcYs, rc.values)) / (Math.max(...rc.values) - Math.min(...rc.values));
    const yAt = (v: number): number => yMaxOf(rcYs, rc.values) + (Math.max(...rc.values) - v) * pxPerUnit;
    for (const [i, y] of lookupYs.entries()) expect(Math.abs(y - yAt(lookups.values[i] ?? 0))).toBeLessThan(0.25);
    expect(html).toContain("App Store Server API lookups' rate (lookups/s)");
    expect(html).toContain(`ranged ${Math.min(...expected)}–${Math.max(...expected)} lookups/s and ended at 9.5 lookups/s`);

    // A run without lookups: no such line, legend or sentence.
    const plain = renderReportHtml({ ...data, timeline: timeline(40, true) });
    expect(plain).toContain('class="rate-line"');
    expect(plain).not.toContain('lookup-rate-line');
    expect(plain).not.toContain('lookups/s');
  });

  it('says so when the run recorded no rate (a run from before rate discovery)', () => {
    const data = emptyRun();
    data.timeline = timeline(40);
    data.summary = emptySummary({ requests_sent: data.timeline.reduce((a, p) => a + p.requests, 0) });
    const html = renderReportHtml(data);
    expect(html).not.toContain('class="rate-line"');
    expect(html).toContain('class="rate-absent"');
    expect(html).toContain('No learned rate was recorded for this run');
    expect(html).toContain('learned rate: not recorded');
    // The rest of the chart is drawn as before.
    expect(/class="requests-line" d="([^"]+)"/.exec(html)?.[1]?.match(/H/g)).toHaveLength(40);
  });

  it('shows the App Store receipts read, superseded, sandbox and unread under the cards, only for a run with App Store rows', () => {
    const counts = (html: string): Record<string, number> =>
      Object.fromEntries([...html.matchAll(/id="receipts-(\w+)" data-value="(\d+)"/g)].map((m) => [m[1] ?? '', Number(m[2])]));
    const data = realisticRun();
    const read = 4180;
    const superseded = 1131;
    data.summary = {
      ...data.summary,
      rows_superseded: superseded,
      rows_read: data.summary.rows_read + superseded,
      receipts: { read, unread: 7, sandbox: 23, purchases: 2902, superseded: superseded + 2, bundles: { 'com.acme.app': read - 12, [XSS_USER]: 12 } },
    };
    const html = renderReportHtml(data);
    // the run's superseded outcome (superseded.csv's rows), not the survey's count, which a canary has not all met
    expect(counts(html)).toEqual({ read, superseded, sandbox: 23, unread: 7 });
    const section = /<section class="receipts" id="app-store-receipts"[\s\S]*?<\/section>/.exec(html)?.[0] ?? '';
    expect(section).toContain(`${(2902).toLocaleString('en-US')} distinct purchases`);
    expect(section).toContain(`<code>com.acme.app</code> ${(read - 12).toLocaleString('en-US')}`);
    expect(section).not.toContain(XSS_USER);
    expect(section).toContain('&lt;script&gt;');
    // in the summary area: after the cards, before the charts
    expect(html.indexOf('id="app-store-receipts"')).toBeGreaterThan(html.indexOf('id="card-mismatched"'));
    expect(html.indexOf('id="app-store-receipts"')).toBeLessThan(html.indexOf('id="chart-outcomes"'));
    // superseded rows are an outcome of their own in the outcome chart, so its bars add up to the rows read
    const outcomeBars = [...html.matchAll(/<rect class="bar"[^>]*data-value="(\d+)"><title>([^<:]+):/g)].filter(
      (m) => m.index !== undefined && m.index < html.indexOf('id="chart-latency"'),
    );
    expect(outcomeBars.find((m) => m[2] === 'superseded')?.[1]).toBe(String(superseded));
    expect(outcomeBars.reduce((n, m) => n + Number(m[1]), 0)).toBe(data.summary.rows_read);

    // no App Store rows: no receipts block, whether the sources were surveyed (all zero) or not
    for (const receipts of [undefined, { read: 0, unread: 0, sandbox: 0, purchases: 0, superseded: 0, bundles: {} }]) {
      const plain = realisticRun();
      if (receipts) plain.summary.receipts = receipts;
      const page = renderReportHtml(plain);
      expect(page).not.toContain('id="app-store-receipts"');
      expect(counts(page)).toEqual({});
      expect(page).not.toMatch(/<title>superseded:/);
    }
    // only unread App Store rows are App Store rows too
    const unreadOnly = emptyRun();
    unreadOnly.summary = emptySummary({ rows_read: 3, receipts: { read: 0, unread: 3, sandbox: 0, purchases: 0, superseded: 0, bundles: {} } });
    expect(counts(renderReportHtml(unreadOnly))).toEqual({ read: 0, superseded: 0, sandbox: 0, unread: 3 });
  });

  it('shows a stopped run with its fatal message', () => {
    const data = emptyRun();
    data.summary = emptySummary({
      status: 'stopped',
      finished_at: null,
      rows_read: 10,
      rows_queued: 10,
      rows_pending: 10,
      fatal: { message: "RevenueCat rejected the API key (401): set REVENUECAT_API_KEY to the app's public SDK key", status: 401, at: '2025-03-14T09:00:01.000Z' },
    });
    const html = renderReportHtml(data);
    expect(html).toContain('>stopped</span>');
    expect(html).toContain('rejected the API key (401)');
    expect(html).toContain('so far');
  });
});
