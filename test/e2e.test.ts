// End to end, all real: CSV files on disk → ingester → BullMQ on Redis → workers → HTTP → fx.sandbox → ledger →
// report files. The fx.sandbox injects 5xx, connection resets and 429s; every row must still end in exactly
// one outcome, and the fx.sandbox must never have seen two requests at once for one user.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { runMigration } from '../src/commands/run.js';
import { silentLogger } from '../src/logger.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';

const HEADER = ['platform', 'app_user_id', 'fetch_token', 'product_id', 'price', 'currency'];

interface Plan {
  rows: string[][];
  good: number;
  flaky: number;
  invalid: number;
  rejected: number;
  duplicates: number;
}

/** 3,000 rows: ~600 users with several receipts each, permanent failures, flaky stores, bad rows, duplicates. */
function planRows(): Plan {
  const plan: Plan = { rows: [], good: 0, flaky: 0, invalid: 0, rejected: 0, duplicates: 0 };
  for (let i = 0; i < 3000; i++) {
    const user = `user-${i % 600}`;
    if (i % 97 === 5) {
      // a duplicate of the row 5 lines up (same platform, user and token)
      plan.rows.push([...(plan.rows[i - 5] as string[])]);
      plan.duplicates++;
    } else if (i % 50 === 7) {
      plan.rows.push(['ios', i % 100 === 7 ? 'guest' : user, token(i), 'pro.monthly', '9.99', 'dollars']);
      plan.rejected++;
    } else if (i % 20 === 3) {
      plan.rows.push(['android', user, token(i, 'invalid'), 'pro.monthly', '', '']);
      plan.invalid++;
    } else if (i % 25 === 11) {
      plan.rows.push(['ios', user, token(i, 'flaky2'), 'pro.monthly', '9.99', 'USD']);
      plan.flaky++;
    } else {
      plan.rows.push([i % 2 ? 'ios' : 'android', user, token(i), 'pro.monthly', '4.99', 'EUR']);
      plan.good++;
    }
  }
  return plan;
}

describe('run: CSV → queue → /v1/receipts → report, through faults', () => {
  const fx = pipelineFixture('e2e', { rateLimitPerSecond: 400, rateLimitHeaders: false, fault5xxRate: 0.07, resetRate: 0.03, latencyMs: 2, seed: 42 });

  it('gives every row exactly one outcome, retries what is transient and stays polite to the API', async () => {
    const plan = planRows();
    const source = await writeCsv(fx.dir, 'receipts.csv', HEADER, plan.rows);
    const config = testConfig(fx.prefix, fx.sandbox.url, { ratePerSecond: 600, concurrency: 32, maxAttempts: 12 });
    const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'e2e', outDir: join(fx.dir, 'report') });
    const s = result.summary;

    expect(s.status).toBe('complete');
    expect(result.exitCode).toBe(1); // rejected and permanently failed rows exist
    expect(s.rows_read).toBe(3000);
    expect(s.rows_rejected).toBe(plan.rejected);
    expect(s.rows_duplicate).toBe(plan.duplicates);
    expect(s.rows_queued).toBe(plan.good + plan.flaky + plan.invalid);
    expect(s.rows_succeeded).toBe(plan.good + plan.flaky);
    expect(s.rows_failed).toBe(plan.invalid);
    expect(s.rows_pending).toBe(0);
    expect(s.by_error_code).toEqual({ rc_7103: plan.invalid });
    expect(s.reconciliation.product_confirmed).toBe(plan.good + plan.flaky);

    // The faults did happen, and were absorbed.
    const stats = fx.sandbox.stats();
    expect(stats.faults['5xx']).toBeGreaterThan(50);
    expect(stats.faults.reset).toBeGreaterThan(20);
    expect(stats.rateLimited).toBeGreaterThan(0);
    expect(stats.overlaps).toBe(0);
    expect(stats.maxInFlightPerUser).toBe(1);
    expect(stats.flagsNotFalse).toBe(0);
    // Nothing that succeeded was sent and accepted twice.
    expect(stats.receiptPosts.maxSuccessfulPerReceipt).toBe(1);
    expect(stats.successfulReceipts).toBe(plan.good + plan.flaky);
    expect(s.requests_sent).toBe(stats.byPath['POST /v1/receipts']);

    // Every input line appears in exactly one report file.
    const succeeded = await readCsvFile(result.files.succeeded);
    const failed = await readCsvFile(result.files.failed);
    const rejected = await readCsvFile(result.files.rejected);
    const dups = await readCsvFile(result.files.duplicates);
    const lines = [...succeeded.map((r) => r.line), ...failed.map((r) => r.error_line), ...rejected.map((r) => r.error_line), ...dups.map((r) => r.line)]
      .map(Number)
      .sort((a, b) => a - b);
    expect(lines).toEqual(Array.from({ length: 3000 }, (_, i) => i + 2));

    // Permanent failures carry status, code and message; rejections their reason.
    for (const row of failed) {
      expect(row).toMatchObject({ error_reason: 'rc_7103', error_code: '7103', error_http_status: '400' });
      // One attempt, plus one for each injected 5xx or reset before the store's answer.
      expect(Number(row.error_attempts)).toBeGreaterThanOrEqual(1);
      expect(row.error_message).not.toBe('');
      expect(row.fetch_token).toContain('sbx-invalid');
    }
    expect(rejected.filter((r) => r.error_reason?.includes('ISO 4217')).length).toBeGreaterThan(0);
    expect(rejected.filter((r) => r.error_reason?.includes('blocklisted')).length).toBeGreaterThan(0);
    for (const d of dups) expect(d.duplicate_of).toBe(`${source}#${Number(d.line) - 5}`);
    // report.html is written beside the CSVs, self-contained, with the run's own figures and failure reasons.
    const html = await readFile(result.files.html, 'utf8');
    expect(html).toContain('id="chart-throughput"');
    expect(html).toContain('rc_7103');
    expect(html).not.toMatch(/<script|src="http/);
    // No token in succeeded.csv, not even masked (the ledger keeps none for a success): its fingerprint finds the row.
    for (const row of succeeded.slice(0, 50)) {
      expect(row.token).toBeUndefined();
      expect(row.fingerprint).toMatch(/^[A-Za-z0-9_-]{14}$/);
    }
  });

  it('takes its own failed.csv back as input', async () => {
    const failedCsv = join(fx.dir, 'report', 'failed.csv');
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const result = await runMigration({ config, logger: silentLogger(), sources: [failedCsv], runId: 'e2e-rerun', outDir: join(fx.dir, 'rerun') });
    const first = await readCsvFile(failedCsv);
    expect(result.summary.rows_read).toBe(first.length);
    expect(result.summary.rows_rejected).toBe(0);
    expect(result.summary.rows_failed).toBe(first.length);
    expect(result.summary.by_error_code).toEqual({ rc_7103: first.length });
    // The second failed.csv has the same columns as the first: error columns are replaced, not stacked.
    const second = await readCsvFile(result.files.failed);
    expect(Object.keys(second[0] ?? {})).toEqual(Object.keys(first[0] ?? {}));
  });
});
