// "Already migrated" means the same payload. RevenueCat's own sample pair: the plain file migrates its five
// receipts; the same receipts with $email, $idfa and a custom attribute are then changed rows, sent again and
// counted as updated; the same file once more is unchanged and skipped. A plan says so beforehand.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { planMigration } from '../src/commands/plan.js';
import { runMigration } from '../src/commands/run.js';
import { silentLogger } from '../src/logger.js';
import { testConfig } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';

const SAMPLES = join(import.meta.dirname, 'fixtures', 'revenuecat-csv');
const PLAIN = join(SAMPLES, 'ios_receipt_import_sample.csv');
const WITH_ATTRIBUTES = join(SAMPLES, 'ios_receipt_import_with_subscriber_attributes_sample.csv');

describe("changed rows: RevenueCat's sample pair", () => {
  const fx = pipelineFixture('changed');
  const logger = silentLogger();

  it('sends the attributes file again as updated after the plain one, then skips it unchanged', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    // The custom column is sent as an attribute too (the $ columns are attributes by their name).
    const plainColumns = { platform: 'ios' as const };
    const columns = { platform: 'ios' as const, attributes: ['tShirtSize'] };
    const posts = (): number => fx.sandbox.stats().receiptPosts.total;

    const first = await runMigration({ config, logger, sources: [PLAIN], columns: plainColumns, runId: 'sample-plain', outDir: join(fx.dir, 'plain') });
    expect(first.exitCode).toBe(0);
    expect(first.summary).toMatchObject({ rows_read: 5, rows_succeeded: 5, already_migrated: 0, rows_updated: 0 });
    expect(posts()).toBe(5);

    // A plan of the second file says what the run will do, and sends nothing.
    const planned = await planMigration({ config, logger, sources: [WITH_ATTRIBUTES], columns, outDir: join(fx.dir, 'plan') });
    expect(planned.plan).toMatchObject({ rows_read: 5, updated: 5, already_migrated: 0, rows_to_send: 5, conflicts: 0 });
    expect(posts()).toBe(5);

    const second = await runMigration({ config, logger, sources: [WITH_ATTRIBUTES], columns, runId: 'sample-attributes', outDir: join(fx.dir, 'attributes') });
    expect(second.exitCode).toBe(0);
    expect(second.summary).toMatchObject({ rows_read: 5, rows_succeeded: 5, rows_updated: 5, already_migrated: 0 });
    expect(posts()).toBe(10);
    // The attributes reached RevenueCat this time.
    const subscriber = fx.sandbox.peekSubscriber('user_wk3E8aoK6a');
    expect(subscriber?.subscriber_attributes?.$email?.value).toBe('email1@example.com');
    expect(subscriber?.subscriber_attributes?.tShirtSize?.value).toBe('small');

    // The same file again: unchanged, skipped.
    const third = await runMigration({ config, logger, sources: [WITH_ATTRIBUTES], columns, runId: 'sample-again', outDir: join(fx.dir, 'again') });
    expect(third.exitCode).toBe(0);
    expect(third.summary).toMatchObject({ rows_read: 5, already_migrated: 5, rows_updated: 0, rows_queued: 0 });
    expect(posts()).toBe(10);
  });
});
