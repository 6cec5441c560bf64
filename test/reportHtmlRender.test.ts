// report.html rendered without a browser: the edge cases (an empty run, one bucket, a week-long timeline, a
// stopped run) and escaping. The page as Chromium draws it: reportHtml.test.ts.
import { describe, expect, it } from 'vitest';
import { renderReportHtml, MAX_TIMELINE_POINTS } from '../src/reports/html.js';
import { emptyRun, emptySummary, realisticRun, T0, timeline, XSS_USER } from './support/reportRuns.js';

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
