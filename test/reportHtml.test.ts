// report.html is opened by people, in a browser: so it is checked in one. A hand-built run (an hour of timeline,
// latencies, failures whose user id is `<script>alert(1)</script>`) is rendered to a file and opened with
// file:// in Debian's Chromium, driven by playwright-core; the page must draw its charts, show the run's
// numbers, run no injected script, load nothing and log no error. The plain tests (reportHtmlRender.test.ts)
// cover the edge cases without a browser.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { renderReportHtml, MAX_TIMELINE_POINTS } from '../src/reports/html.js';
import { TIMELINE_BUCKET_SECONDS, type ReportData } from '../src/reports/reportData.js';
import { realisticRun, T0, XSS_MESSAGE, XSS_SOURCE, XSS_USER } from './support/reportRuns.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = join(process.cwd(), 'docs', 'report-screenshot.png');

/** Digits of a shown number: "12,345" → 12345. */
function shownNumber(text: string | null): number {
  return Number((text ?? '').replace(/[^0-9]/g, ''));
}

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

    // The learned rate: a line of 180 steps (the pairs again) across the plot, stepping down where the 429s came
    // (a point of the line above the dip's 429 bars lies lower on the page than one above the steady stretch).
    const rateLine = page.locator('#chart-throughput path.rate-line');
    expect(await rateLine.count()).toBe(1);
    expect(await rateLine.getAttribute('data-points')).toBe('180');
    const rateBox = await rateLine.boundingBox();
    const plotBox = await page.locator('#chart-throughput path.requests-area').boundingBox();
    // Spans the plot, give or take its stroke (1.75 px) at either end.
    expect(Math.abs((rateBox?.width ?? 0) - (plotBox?.width ?? 0))).toBeLessThan(4);
    const dipX = await page
      .locator('#chart-throughput rect.rate-limited', { hasText: 'paced at 4.4 req/s' })
      .first()
      .evaluate((el) => {
        const box = el.getBoundingClientRect();
        return box.left + box.width / 2;
      });
    const yAt = (x: number): Promise<number> =>
      rateLine.evaluate((el, px) => {
        // Walk the laid-out path to the point under x = px (screen coordinates).
        const path = el as unknown as {
          getTotalLength(): number;
          getPointAtLength(l: number): { x: number; y: number };
          getScreenCTM(): { a: number; b: number; c: number; d: number; e: number; f: number };
        };
        const m = path.getScreenCTM();
        let best = { dx: Infinity, y: 0 };
        for (let l = 0; l <= path.getTotalLength(); l += 1) {
          const p = path.getPointAtLength(l);
          const sx = m.a * p.x + m.c * p.y + m.e;
          const sy = m.b * p.x + m.d * p.y + m.f;
          if (Math.abs(sx - px) < best.dx) best = { dx: Math.abs(sx - px), y: sy };
        }
        return best.y;
      }, x);
    expect(await yAt(dipX)).toBeGreaterThan((await yAt((plotBox?.x ?? 0) + 20)) + 50);
    expect(await page.locator('#throughput .legend-rate').isVisible()).toBe(true);
    expect(await page.locator('#throughput .legend-rate').textContent()).toContain('learned rate');

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
