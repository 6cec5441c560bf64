// expected_* columns checked at import, then `verify` reading the users again through the sandbox's API v2
// after their state changed: every difference lands in mismatches.csv with expected and actual side by side.
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMigration } from '../src/commands/run.js';
import { verifyMigration } from '../src/commands/verify.js';
import { silentLogger } from '../src/logger.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';

const IN_30_DAYS = new Date(Date.now() + 30 * 86_400_000).toISOString();

describe('expected state and verify', () => {
  const fx = pipelineFixture('expect', { apiKeys: ['appl_sandbox_key', 'sk_sandbox_secret'], projectId: 'proj_test' });

  it('reports rows that did not come out as expected, at import and again after the fact', async () => {
    const header = ['platform', 'app_user_id', 'fetch_token', 'product_id', 'expected_entitlement', 'expected_expires_at', 'expected_active', 'expected_environment'];
    const source = await writeCsv(fx.dir, 'expect.csv', header, [
      ['android', 'e-ok', token(1), 'gold', 'premium', IN_30_DAYS, 'true', 'production'], // line 2: as expected
      ['android', 'e-pro', token(2), 'gold', 'pro', '', '', ''], // line 3: expects an entitlement nobody grants
      ['android', 'e-env', token(3), 'gold', '', '', '', 'sandbox'], // line 4: expects the sandbox store
      ['android', 'e-lapsed', token(4, 'expired'), 'gold', 'premium', '', 'false', ''], // line 5: lapsed, and known to be
      ['android', 'e-soon', token(5), 'gold', 'premium', new Date(Date.now() + 90 * 86_400_000).toISOString(), '', ''], // line 6: expires 60 days early
      ['android', 'e-bad', token(6), 'gold', 'premium', 'next tuesday', '', ''], // line 7: not a date
    ]);
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const out = join(fx.dir, 'report');
    const run = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'expect', outDir: out });
    expect(run.summary).toMatchObject({ rows_succeeded: 5, rows_rejected: 1, rows_mismatched: 3 });
    expect(run.exitCode).toBe(1);
    const rejected = await readCsvFile(run.files.rejected);
    expect(rejected[0]?.error_reason).toMatch(/expected_expires_at "next tuesday" is not a date/);

    const atImport = await readCsvFile(run.files.mismatches);
    expect(atImport.map((m) => [m.line, m.stage, m.kind])).toEqual([
      ['3', 'import', 'entitlement_missing'],
      ['4', 'import', 'environment_differs'],
      ['6', 'import', 'expiry_differs'],
    ]);
    for (const m of atImport) {
      expect(m.expected).not.toBe('');
      expect(m.actual).not.toBe('');
      expect(m.expected).not.toBe(m.actual);
    }

    // Later, the store revokes one purchase: verify finds it, reading each user once over v2.
    expect(fx.sandbox.removePurchase('e-ok', 'gold')).toBe(true);
    const subscribersBefore = fx.sandbox.stats().subscribers;
    const verified = await verifyMigration({ config: { ...config, secretKey: 'sk_sandbox_secret', projectId: 'proj_test' }, logger: silentLogger(), runId: 'expect', outDir: out });
    expect(verified.result.users).toBe(5);
    expect(verified.result.checked).toBe(5);
    expect(verified.summary.verify).toMatchObject({ api: 'v2', checked: 5, users: 5 });
    expect(fx.sandbox.stats().subscribers).toBe(subscribersBefore);
    const all = await readCsvFile(verified.files.mismatches);
    const fromVerify = all.filter((m) => m.stage === 'verify');
    expect(fromVerify.filter((m) => m.app_user_id === 'e-ok').map((m) => m.kind)).toContain('product_missing');
    expect(all.filter((m) => m.stage === 'import')).toHaveLength(3);
    expect(await readFile(verified.files.html, 'utf8')).toContain('Not as expected');
  });

  it('refuses to verify over v2 without a secret key and project id, saying what to set', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    await expect(verifyMigration({ config, logger: silentLogger(), runId: 'expect' })).rejects.toThrow(/REVENUECAT_SECRET_KEY/);
    await expect(verifyMigration({ config: { ...config, secretKey: 'appl_public' }, logger: silentLogger(), runId: 'expect' })).rejects.toThrow(/sk_/);
    await expect(verifyMigration({ config: { ...config, secretKey: 'sk_x' }, logger: silentLogger(), runId: 'expect' })).rejects.toThrow(/REVENUECAT_PROJECT_ID/);
  });
});
