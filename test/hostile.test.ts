// The hostile corpus (test/hostile/, indexed in test/hostile/cases.ts) through the whole pipeline: CSV on disk →
// ingester → BullMQ on Redis → workers → the sandbox → ledger → report files, one run per file. Whatever a file
// holds, nothing may throw, no row may vanish, every bad row is rejected at its line with a reason a user can act
// on, and the good rows around it still migrate.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runMigration } from '../src/commands/run.js';
import { silentLogger } from '../src/logger.js';
import { readCsvFile, testConfig } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { HOSTILE_CASES, type HostileCase } from './hostile/cases.js';
import { generate, TRUNCATED_GZIP_ROWS } from './hostile/make.mjs';

const CORPUS = fileURLToPath(new URL('./hostile/', import.meta.url));

const numbers = (values: (string | undefined)[]): number[] => values.map(Number).sort((a, b) => a - b);

describe('hostile inputs: every row ends in exactly one outcome and the rest of the file still migrates', () => {
  const fx = pipelineFixture('hostile');
  let generatedDir = '';
  let generatedNames: string[] = [];

  beforeAll(() => {
    generatedDir = join(fx.dir, 'generated');
    generatedNames = generate(generatedDir);
  });

  it('indexes every corpus file, plain and generated, and covers at least 30 kinds', async () => {
    const plain = (await readdir(CORPUS)).filter((f) => /\.csv(\.gz)?$/.test(f));
    const indexed = HOSTILE_CASES.map((c) => c.file);
    expect(new Set(indexed).size).toBe(indexed.length);
    expect([...plain, ...generatedNames].sort()).toEqual([...indexed].sort());
    for (const c of HOSTILE_CASES) expect(c.generated === true, c.file).toBe(generatedNames.includes(c.file));
    expect(HOSTILE_CASES.length).toBeGreaterThanOrEqual(30);
  });

  const run = async (c: HostileCase, index: number) => {
    const source = join(c.generated ? generatedDir : CORPUS, c.file);
    // One prefix for every run (run ids differ, and each file's tokens are its own, so no row is "already migrated").
    const config = testConfig(fx.prefix, fx.sandbox.url, { ratePerSecond: 4000, concurrency: 32 });
    const result = await runMigration({
      config,
      logger: silentLogger(),
      sources: [source],
      runId: `hostile-${index}`,
      outDir: join(fx.dir, 'reports', c.file),
      columns: c.platform === undefined ? {} : { platform: c.platform },
      pollMs: 20,
      progressEveryMs: 0,
    });
    const [succeeded, failed, rejected, duplicates] = await Promise.all(
      [result.files.succeeded, result.files.failed, result.files.rejected, result.files.duplicates].map((f) => readCsvFile(f)),
    );
    return { source, result, summary: result.summary, succeeded: succeeded ?? [], failed: failed ?? [], rejected: rejected ?? [], duplicates: duplicates ?? [] };
  };

  for (const [index, c] of HOSTILE_CASES.entries()) {
    it(`${c.file}: ${c.what}`, async () => {
      const { source, summary: s, succeeded, failed, rejected, duplicates } = await run(c, index);

      // The run finished and every row read has exactly one outcome, at a distinct line.
      expect(s.status).toBe('complete');
      expect(s.rows_pending).toBe(0);
      expect(s.rows_failed).toBe(0);
      expect(failed).toEqual([]);
      expect(s.rows_read).toBe(s.rows_succeeded + s.rows_rejected + s.rows_duplicate);
      expect(s.rows_queued).toBe(s.rows_succeeded);
      const lines = numbers([...succeeded.map((r) => r.line), ...rejected.map((r) => r.error_line), ...duplicates.map((r) => r.line)]);
      expect(lines).toHaveLength(s.rows_read);
      expect(new Set(lines).size).toBe(lines.length);
      for (const r of rejected) expect(r.error_source).toBe(source);
      for (const r of succeeded) expect(r.source).toBe(source);

      if (c.special === 'truncated-gzip') {
        // Where the cut falls depends on zlib's output; what must hold is: one rejection at the first line not
        // read, naming it, and every complete row before it migrated.
        expect(rejected).toHaveLength(1);
        const reason = rejected[0]?.error_reason ?? '';
        const match = /^the gzip data is truncated: reading stopped at line (\d+), so that line and everything after it are missing; re-download or re-create the file$/.exec(
          reason,
        );
        expect(match, reason).not.toBeNull();
        const stoppedAt = Number(match?.[1]);
        expect(Number(rejected[0]?.error_line)).toBe(stoppedAt);
        expect(stoppedAt).toBeGreaterThan(100);
        expect(stoppedAt).toBeLessThan(TRUNCATED_GZIP_ROWS + 2);
        expect(numbers(succeeded.map((r) => r.line))).toEqual(Array.from({ length: stoppedAt - 2 }, (_, i) => i + 2));
        return;
      }
      if (c.special === 'random-bytes') {
        // Nothing in random bytes is a usable row; whatever the reader makes of them is rejected, never sent.
        expect(s.rows_read).toBeGreaterThanOrEqual(1);
        expect(s.rows_succeeded).toBe(0);
        expect(s.rows_rejected).toBe(s.rows_read);
        for (const r of rejected) expect(r.error_reason).not.toBe('');
        return;
      }

      // Every bad row is rejected at its line, with its reason; nothing else is rejected.
      const byLine = new Map(rejected.map((r) => [Number(r.error_line), r.error_reason ?? '']));
      for (const bad of c.bad) {
        expect(byLine.has(bad.line), `line ${bad.line} should be rejected; rejected: ${JSON.stringify([...byLine])}`).toBe(true);
        expect(byLine.get(bad.line), `line ${bad.line}`).toMatch(bad.reason);
      }
      expect(numbers(rejected.map((r) => r.error_line))).toEqual(c.bad.map((b) => b.line).sort((a, b) => a - b));

      // Every good row succeeded (at its line, where the case says).
      expect(s.rows_succeeded).toBe(c.good);
      expect(succeeded).toHaveLength(c.good);
      if (c.goodLines !== undefined) expect(numbers(succeeded.map((r) => r.line))).toEqual(c.goodLines);
      expect(s.rows_duplicate).toBe(c.duplicates ?? 0);
      expect(s.rows_read).toBe(c.good + c.bad.length + (c.duplicates ?? 0));

      // Values that look like formulas are data: they reached RevenueCat exactly as written.
      for (const user of c.sentUsers ?? []) expect(fx.sandbox.peekSubscriber(user), `subscriber ${JSON.stringify(user)}`).toBeDefined();
      for (const [user, name, value] of c.sentAttributes ?? []) {
        expect(fx.sandbox.peekSubscriber(user)?.subscriber_attributes?.[name]?.value, `${user} ${name}`).toBe(value);
      }
    });
  }
});
