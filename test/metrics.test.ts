// Metrics after a known run: the process's own counters, and what `serve` reads from Redis for everyone.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runMigration } from '../src/commands/run.js';
import { serveMonitor } from '../src/commands/serve.js';
import { PipelineMetrics } from '../src/metrics/metrics.js';
import { silentLogger } from '../src/logger.js';
import { testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';

async function value(metrics: PipelineMetrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  const match = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l) && (v as { metricName?: string }).metricName !== `${name}_sum`);
  return match?.value;
}

describe('metrics', () => {
  const fx = pipelineFixture('metrics', { rateLimitPerSecond: 500 });

  it('count rows, requests by status and code, latencies and the rate of a known run, and serve them', async () => {
    const rows = [
      ...Array.from({ length: 25 }, (_, i) => ['ios', `m-${i}`, token(i)]),
      ...Array.from({ length: 3 }, (_, i) => ['ios', `bad-${i}`, token(100 + i, 'invalid')]),
      ['ios', 'guest', token(200)],
      ['ios', 'x/y', token(201)],
    ];
    const source = await writeCsv(fx.dir, 'm.csv', ['platform', 'app_user_id', 'fetch_token'], rows);
    const config = testConfig(fx.prefix, fx.sandbox.url, { ratePerSecond: 100 });
    const metrics = new PipelineMetrics();
    const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'm1', outDir: join(fx.dir, 'r'), metrics });
    expect(result.summary).toMatchObject({ rows_succeeded: 25, rows_failed: 3, rows_rejected: 2 });

    expect(await value(metrics, 'rcm_rows_total', { outcome: 'succeeded' })).toBe(25);
    expect(await value(metrics, 'rcm_rows_total', { outcome: 'failed' })).toBe(3);
    expect(await value(metrics, 'rcm_rows_total', { outcome: 'rejected' })).toBe(2);
    expect(await value(metrics, 'rcm_requests_total', { status: '200', code: '' })).toBe(25);
    expect(await value(metrics, 'rcm_requests_total', { status: '400', code: '7103' })).toBe(3);
    const latency = await metrics.registry.getSingleMetric('rcm_request_duration_seconds')?.get();
    const count = latency?.values.filter((v) => (v as { metricName?: string }).metricName === 'rcm_request_duration_seconds_count').reduce((a, v) => a + v.value, 0);
    expect(count).toBe(28);
    expect(await value(metrics, 'rcm_request_rate_per_second')).toBe(100);
    expect(await value(metrics, 'rcm_ingest_line', { source })).toBe(31);
    // No label ever carries a user id or a token.
    const text = await metrics.registry.metrics();
    expect(text).not.toContain('m-1');
    expect(text).not.toContain(token(1));

    const server = await serveMonitor({ config, logger: silentLogger(), port: 0 });
    try {
      const scraped = await (await fetch(`${server.url}/metrics`)).text();
      expect(scraped).toContain('rcm_run_rows{run="m1",outcome="succeeded"} 25');
      expect(scraped).toContain('rcm_run_rows{run="m1",outcome="rejected"} 2');
      expect(scraped).toContain('rcm_run_rows{run="m1",outcome="pending"} 0');
      expect(scraped).toMatch(/rcm_queue_jobs\{queue="receipts",state="wait"\} 0/);
      expect(scraped).toMatch(/rcm_shared_request_rate_per_second \d+/);
      const health = await fetch(`${server.url}/healthz`);
      expect(health.status).toBe(200);
      const dashboard = await fetch(`${server.url}/dashboard`);
      expect(dashboard.status).toBe(200);
      expect(await dashboard.text()).toMatch(/<html/i);
      const queues = (await (await fetch(`${server.url}/dashboard/api/queues`)).json()) as { queues: { name: string }[] };
      expect(queues.queues.map((q) => q.name).sort()).toEqual(['receipts', 'runs']);
    } finally {
      await server.close();
    }
  });
});
