// Report files never hand a spreadsheet a formula, and a report fed back to `run` still sends the original values.
// (The escaping itself, without Redis: formulaCells.test.ts.)
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMigration } from '../src/commands/run.js';
import { silentLogger } from '../src/logger.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';

describe('formula cells in reports', () => {
  const fx = pipelineFixture('formula');

  it('writes failed.csv safe for spreadsheets, and failed.csv sends the original values again', async () => {
    const user = '=1+1';
    const fetchToken = `+${token(1, 'invalid')}`;
    const source = await writeCsv(fx.dir, 'f.csv', ['platform', 'app_user_id', 'fetch_token', '$displayName'], [['ios', user, fetchToken, '@SUM(A1:A9)']]);
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const first = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'f1', outDir: join(fx.dir, 'r1') });
    expect(first.summary.rows_failed).toBe(1);
    const raw = await readFile(first.files.failed, 'utf8');
    expect(raw).toContain(`'=1+1`);
    expect(raw).toContain(`'@SUM(A1:A9)`);
    expect(raw.split('\n').slice(1).join('\n')).not.toMatch(/(^|,)[=+@]/m);
    expect(fx.sandbox.receiptPostCount(user, fetchToken).posts).toBe(1);

    const again = await runMigration({ config, logger: silentLogger(), sources: [first.files.failed], runId: 'f2', outDir: join(fx.dir, 'r2') });
    expect(again.summary).toMatchObject({ rows_read: 1, rows_rejected: 0, rows_failed: 1 });
    // The same user and token reached the API, not the escaped forms.
    expect(fx.sandbox.receiptPostCount(user, fetchToken).posts).toBe(2);
    const second = await readCsvFile(again.files.failed);
    expect(second[0]?.app_user_id).toBe(`'=1+1`);
  });
});
