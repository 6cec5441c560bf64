// report.html is opened by people, in a browser: so it is checked in one. A hand-built run (an hour of timeline,
// latencies, failures whose user id is `<script>alert(1)</script>`) is rendered to a file and opened with
// file:// in Debian's Chromium, driven by playwright-core; the page must draw its charts, show the run's
// numbers, run no injected script, load nothing and log no error. The plain tests cover the edge cases.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { renderReportHtml, MAX_TIMELINE_POINTS } from '../src/reports/html.js';
import { LATENCY_BUCKETS_MS, percentileOf, TIMELINE_BUCKET_SECONDS, type ReportData, type TimelinePoint } from '../src/reports/reportData.js';
import type { Summary } from '../src/reports/summary.js';

const CHROMIUM = '/usr/bin/chromium';
const XSS_USER = '<script>alert(1)</script>';
const XSS_MESSAGE = 'store said <img src=x onerror=alert(2)> & gave up';
const XSS_SOURCE = 'exports/<b>march</b>.csv';
const SCREENSHOT = join(process.cwd(), 'docs', 'report-screenshot.png');

/** Epoch seconds of 2025-03-14 09:00:00 UTC, on a bucket boundary like the ledger's. */
const T0 = Date.UTC(2025, 2, 14, 9, 0, 0) / 1000;

function emptySummary(over: Partial<Summary> = {}): Summary {
  return {
    run_id: 'empty-run',
    status: 'complete',
    started_at: '2025-03-14T09:00:00.000Z',
    finished_at: '2025-03-14T09:00:01.000Z',
    sources: [],
    rows_read: 0,
    rows_rejected: 0,
    rows_duplicate: 0,
    rows_queued: 0,
    rows_succeeded: 0,
    rows_failed: 0,
    rows_pending: 0,
    rows_mismatched: 0,
    already_migrated: 0,
    requests_sent: 0,
    retries: 0,
    by_http_status: {},
    by_error_code: {},
    reconciliation: { product_confirmed: 0, product_not_checked: 0, product_not_in_subscriber: 0, transferred: 0 },
    ...over,
  };
}

function emptyRun(): ReportData {
  return {
    summary: emptySummary(),
    timeline: [],
    latency: { count: 0, buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0), p50: null, p90: null, p95: null, p99: null },
    topFailures: [],
    topRejections: [],
    generatedAt: '2025-03-14T09:00:02.000Z',
  };
}

/** A deterministic timeline: ~9 req/s with a rate-limited dip in the middle and a slower tail. */
function timeline(n: number): TimelinePoint[] {
  const points: TimelinePoint[] = [];
  for (let i = 0; i < n; i++) {
    const dip = i >= n * 0.4 && i < n * 0.45;
    const wobble = Math.round(6 * Math.sin(i / 7));
    const requests = dip ? 40 + wobble : i > n * 0.9 ? 50 + wobble : 92 + wobble;
    const rateLimited = dip ? 12 + (i % 3) : i % 37 === 0 ? 2 : 0;
    const failed = i % 11 === 0 ? 3 : 1;
    points.push({ t: T0 + i * TIMELINE_BUCKET_SECONDS, requests, rateLimited, succeeded: requests - rateLimited - failed - 2, failed });
  }
  return points;
}

function realisticRun(): ReportData {
  const points = timeline(360); // one hour
  const sum = (f: (p: TimelinePoint) => number): number => points.reduce((a, p) => a + f(p), 0);
  const requests = sum((p) => p.requests);
  const rateLimited = sum((p) => p.rateLimited);
  const succeeded = sum((p) => p.succeeded);
  const failed = sum((p) => p.failed);
  const buckets = [0, 14, 310, 5200, 17800, 6900, 900, 200, 41, 9, 2, 1];
  // The histogram must account for every request, like the ledger's does.
  buckets[4] = (buckets[4] ?? 0) + (requests - buckets.reduce((a, b) => a + b, 0));
  const rejected = 37;
  const duplicates = 12;
  const alreadyMigrated = 250;
  const summary = emptySummary({
    run_id: 'backfill-20250314-0900',
    started_at: new Date(T0 * 1000).toISOString(),
    finished_at: new Date((T0 + 3600) * 1000 + 4200).toISOString(),
    sources: ['s3://acme-exports/receipts/2025-03-13/apple.csv.gz', 's3://acme-exports/receipts/2025-03-13/google.csv', XSS_SOURCE],
    rows_read: succeeded + failed + rejected + duplicates + alreadyMigrated,
    rows_rejected: rejected,
    rows_duplicate: duplicates,
    rows_queued: succeeded + failed,
    rows_succeeded: succeeded,
    rows_failed: failed,
    already_migrated: alreadyMigrated,
    requests_sent: requests,
    retries: 1,
    by_http_status: { '200': succeeded + 5, '400': 180, '429': rateLimited, '500': 95, '503': 40, timeout: 14, reset: 9 },
    by_error_code: { rc_7103: 230, rc_7102: 104, product_not_in_subscriber: 40, timeout: failed - 230 - 104 - 40 - 6, [XSS_USER]: 6 },
    reconciliation: { product_confirmed: succeeded - 310, product_not_checked: 310, product_not_in_subscriber: 40, transferred: 0 },
  });
  return {
    summary,
    timeline: points,
    latency: {
      count: requests,
      buckets,
      p50: percentileOf(buckets, 0.5),
      p90: percentileOf(buckets, 0.9),
      p95: percentileOf(buckets, 0.95),
      p99: percentileOf(buckets, 0.99),
    },
    topFailures: [
      {
        reason: 'rc_7103',
        count: 230,
        meaning: 'invalid receipt / token',
        examples: [
          { src: 'apple.csv.gz', line: 118, app_user_id: XSS_USER, token: 'MIIT…k9Q=', message: XSS_MESSAGE },
          { src: 'apple.csv.gz', line: 2051, app_user_id: 'user_8812', token: 'MIIT…x1A=', message: 'The receipt is not valid.' },
        ],
      },
      {
        reason: 'rc_7102',
        count: 104,
        meaning: 'receipt already in use by another user (cannot transfer)',
        examples: [{ src: 'google.csv', line: 77, app_user_id: '$RCAnonymousID:4f1c2', token: 'gpla…33fe', message: 'The receipt is already in use by another subscriber.' }],
      },
      { reason: 'product_not_in_subscriber', count: 40, examples: [{ src: 'google.csv', line: 901, app_user_id: 'u-901', token: 'gpla…0c1d', message: 'product monthly_9 not in subscriber' }] },
    ],
    topRejections: [
      { reason: 'app_user_id is blocklisted (null)', count: 30, examples: [{ src: XSS_SOURCE, line: 4 }, { src: 'google.csv', line: 12 }] },
      { reason: 'currency without price', count: 7, examples: [{ src: 'apple.csv.gz', line: 99 }] },
    ],
    generatedAt: new Date((T0 + 3600) * 1000 + 5000).toISOString(),
  };
}

/** Digits of a shown number: "12,345" → 12345. */
function shownNumber(text: string | null): number {
  return Number((text ?? '').replace(/[^0-9]/g, ''));
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

describe('report.html in headless Chromium', () => {
  let browser: Browser;
  let page: Page;
  let dir: string;
  let data: ReportData;
  let fileUrl: string;
  const dialogs: string[] = [];
  const requests: string[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)`);
    data = realisticRun();
    dir = await mkdtemp(join(tmpdir(), 'rcm-report-html-'));
    const file = join(dir, 'report.html');
    await writeFile(file, renderReportHtml(data));
    fileUrl = pathToFileURL(file).href;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    // Everything but the page itself is recorded and refused: the report must not need the network.
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url === fileUrl) return route.continue();
      requests.push(url);
      return route.abort();
    });
    await page.goto(fileUrl, { waitUntil: 'load' });
  });

  afterAll(async () => {
    await browser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows the run numbers', async () => {
    const s = data.summary;
    const card = (id: string): Promise<string | null> => page.locator(`#card-${id} .card-value`).textContent();
    expect(shownNumber(await card('rows-read'))).toBe(s.rows_read);
    expect(shownNumber(await card('succeeded'))).toBe(s.rows_succeeded);
    expect(shownNumber(await card('failed'))).toBe(s.rows_failed);
    expect(shownNumber(await card('rejected'))).toBe(s.rows_rejected);
    expect(shownNumber(await card('requests-sent'))).toBe(s.requests_sent);
    expect(await page.locator('#run-id').textContent()).toBe(s.run_id);
    expect(await page.locator('#run-status').textContent()).toBe('complete');
    expect(data.latency.p95).toBe(400);
    expect(await page.locator('#latency-p95').textContent()).toBe('≤ 400 ms');
    expect(await page.locator('#latency-p50').textContent()).toBe(`≤ ${data.latency.p50} ms`);
  });

  it('draws every chart', async () => {
    for (const id of ['chart-outcomes', 'chart-throughput', 'chart-latency', 'chart-errors', 'chart-http-status']) {
      const svg = page.locator(`svg#${id}`);
      expect(await svg.count()).toBe(1);
      expect(await svg.locator('title').first().textContent()).not.toBe('');
      expect(await svg.getAttribute('aria-label')).toBeTruthy();
      const box = await svg.boundingBox();
      expect(box?.width).toBeGreaterThan(400);
    }
    const s = data.summary;
    const nonZero = [s.rows_succeeded, s.rows_failed, s.rows_rejected, s.rows_duplicate, s.already_migrated].filter((n) => n > 0).length;
    expect(await page.locator('#chart-outcomes rect.bar').count()).toBe(nonZero);

    // 360 ten-second buckets are over the cap, so they are drawn in pairs: 180 steps, each a horizontal segment.
    const d = (await page.locator('#chart-throughput path.requests-line').getAttribute('d')) ?? '';
    expect(d.match(/H/g)).toHaveLength(Math.ceil(360 / Math.ceil(360 / MAX_TIMELINE_POINTS)));
    // The path as Chromium laid it out (getTotalLength), not only as written: it spans the plot and wiggles.
    const length = await page.locator('#chart-throughput path.requests-line').evaluate((el) => (el as unknown as { getTotalLength(): number }).getTotalLength());
    expect(length).toBeGreaterThan(1000);
    expect(await page.locator('#chart-throughput path.success-line').count()).toBe(1);
    const limitedPairs = new Set(data.timeline.filter((p) => p.rateLimited > 0).map((p) => Math.floor((p.t - T0) / (2 * TIMELINE_BUCKET_SECONDS))));
    expect(await page.locator('#chart-throughput rect.rate-limited').count()).toBe(limitedPairs.size);
    expect(await page.locator('#chart-throughput text.tick').count()).toBeGreaterThan(4);

    expect(await page.locator('#chart-latency rect.bar').count()).toBe(data.latency.buckets.filter((n) => n > 0).length);
    expect(await page.locator('#chart-latency text.pmark').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('p95')]));
    expect(await page.locator('#chart-errors rect.bar').count()).toBe(Object.keys(s.by_error_code).length);
    expect(await page.locator('#chart-http-status rect.bar').count()).toBe(Object.keys(s.by_http_status).length);
  });

  it('shows hostile text as text and runs none of it', async () => {
    expect(dialogs).toEqual([]);
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('b').count()).toBe(0);
    const cell = page.locator('#top-failures td.user', { hasText: XSS_USER });
    expect(await cell.textContent()).toBe(XSS_USER);
    expect(await cell.isVisible()).toBe(true);
    expect(await page.locator('#top-failures').textContent()).toContain(XSS_MESSAGE);
    expect(await page.locator('header').textContent()).toContain(XSS_SOURCE);
  });

  it('loads nothing and logs no error', () => {
    // The page's Content-Security-Policy blocks any load before it becomes a request, and Chromium logs each
    // blocked one as a console error: so a stray reference fails one of these two checks either way.
    expect(requests).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it('takes the README screenshot', async () => {
    await mkdir(join(process.cwd(), 'docs'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
  });
});
