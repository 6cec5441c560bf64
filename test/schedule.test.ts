// Scheduled runs: a real BullMQ job scheduler whose firing a worker process turns into a run with its own
// report. (Templates for the firing day: template.test.ts.)
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addSchedule, deleteSchedule, schedules } from '../src/commands/schedule.js';
import { startWorkers } from '../src/commands/work.js';
import { ConfigError } from '../src/config.js';
import { silentLogger } from '../src/logger.js';
import { testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { until } from './support/until.js';

describe('rc-migrate schedule', () => {
  const fx = pipelineFixture('sched');

  it('refuses a bad cron pattern or time zone with a message', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    await expect(addSchedule(config, { id: 'bad', cron: 'every night', sources: ['x.csv'] })).rejects.toThrow(ConfigError);
    await expect(addSchedule(config, { id: 'bad', cron: '0 3 * * *', tz: 'Mars/Olympus', sources: ['x.csv'] })).rejects.toThrow(/not a time zone/);
  });

  it('fires, and a worker process turns the firing into a run with a report', async () => {
    const reportDir = join(fx.dir, 'reports');
    const config = testConfig(fx.prefix, fx.sandbox.url, { reportDir });
    // The export of the firing day (and the next, should the test straddle midnight UTC).
    for (const offset of [0, 1]) {
      const day = new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
      await writeCsv(
        fx.dir,
        `export-${day}.csv`,
        ['platform', 'app_user_id', 'fetch_token'],
        Array.from({ length: 12 }, (_, i) => ['ios', `s-${i}`, token(i)]),
      );
    }
    const info = await addSchedule(config, { id: 'nightly', cron: '*/2 * * * * *', sources: [join(fx.dir, 'export-{date}.csv')] });
    expect(info.next).toBeDefined();
    expect((await schedules(config)).map((s) => s.id)).toEqual(['nightly']);

    const workers = await startWorkers({ config, logger: silentLogger() });
    let summaryPath: string | undefined;
    try {
      summaryPath = await until(
        "a firing's report",
        async () => {
          const runs = existsSync(reportDir) ? await readdir(reportDir) : [];
          const found = runs.find((r) => /^nightly-\d{8}-\d{4}$/.test(r) && existsSync(join(reportDir, r, 'summary.json')));
          return found === undefined ? undefined : join(reportDir, found, 'summary.json');
        },
        { timeoutMs: 30_000, everyMs: 200 },
      );
    } finally {
      expect(await deleteSchedule(config, 'nightly')).toBe(true);
      await workers.close();
    }
    expect(summaryPath).toBeDefined();
    const summary = JSON.parse(await readFile(summaryPath, 'utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ status: 'complete', rows_read: 12 });
    expect(Number(summary.rows_succeeded) + Number(summary.already_migrated)).toBe(12);
    expect(await schedules(config)).toEqual([]);
  });
});
