// The run session that `run`, `retry` and scheduled firings share: its events, its one list of resources
// released in reverse order, and its two endings (report always, or only once every row has an outcome).
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { reportRun } from '../src/commands/report.js';
import { retryRun } from '../src/commands/retry.js';
import { silentLogger } from '../src/logger.js';
import { Resources, withResources } from '../src/session/resources.js';
import { RunSession, type SessionEvents } from '../src/session/runSession.js';
import { testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { captureLog } from './support/logCapture.js';

describe('Resources', () => {
  it('releases in reverse order, every one even when one fails, then throws the first failure', async () => {
    const released: string[] = [];
    const resources = new Resources();
    resources.add('connection', 'c', (v) => released.push(v));
    resources.defer('timer', () => released.push('t'));
    const mark = resources.mark();
    resources.add('worker', 'w', (v) => released.push(v));
    resources.defer('broken', () => {
      throw new Error('boom');
    });
    resources.defer('watch', () => released.push('x'));
    await expect(resources.releaseTo(mark)).rejects.toThrow('could not release broken: boom');
    expect(released).toEqual(['x', 'w']);
    await resources.releaseAll();
    expect(released).toEqual(['x', 'w', 't', 'c']);
    await resources.releaseAll(); // nothing left: a second release does nothing
    expect(released).toHaveLength(4);
  });

  it('gives up on a release that outlives its bound: forces it, says what it left, and releases the rest', async () => {
    const log = captureLog('warn');
    const resources = new Resources(log.logger);
    const released: string[] = [];
    resources.add('connection', 'c', (v) => released.push(v));
    let forced = '';
    const never = (): Promise<void> => new Promise<void>(() => undefined);
    resources.add('stuck connection', 's', never, { withinMs: 50, leaves: 'its unanswered commands are dropped', force: (v) => (forced = v) });
    await resources.releaseAll();
    expect(forced).toBe('s');
    expect(released).toEqual(['c']);
    expect(log.matching(/^gave up waiting for the stuck connection to be released after 50 ms: its unanswered commands are dropped$/)).toHaveLength(1);
    // Without a log to say it in, it is thrown once everything else is released.
    const unlogged = new Resources();
    unlogged.defer('stuck watch', never, { withinMs: 20, leaves: 'nothing' });
    unlogged.defer('timer', () => released.push('t'));
    await expect(unlogged.releaseAll()).rejects.toThrow('gave up waiting for the stuck watch to be released after 20 ms: nothing');
    expect(released).toEqual(['c', 't']);
  });

  it("after work that failed, a release that fails is logged and the work's error is the one thrown", async () => {
    const log = captureLog('error');
    const resources = new Resources(log.logger);
    resources.defer('broken', () => {
      throw new Error('boom');
    });
    await resources.releaseAll({ failure: new Error('the ingest failed') });
    expect(log.matching(/not everything could be released/)).toMatchObject([
      { failure: 'the ingest failed', err: { message: expect.stringContaining('could not release broken: boom') as unknown } },
    ]);
    const failing = withResources((r) => {
      r.defer('broken', () => {
        throw new Error('boom');
      });
      return Promise.reject(new Error('the work failed'));
    });
    // Without a log, Node's warning says it.
    const warnings: string[] = [];
    const onWarning = (w: Error): number => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      await expect(failing).rejects.toThrow('the work failed');
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual(['after the failure (the work failed), not everything could be released: could not release broken: boom']);
  });
});

describe('RunSession', () => {
  const fx = pipelineFixture('session', { apiKeys: ['appl_sandbox_key'] });

  it('tells its subscribers what happens, in order, and releases the metrics server it started', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => ['ios', `s-${i}`, token(i)]);
    const source = await writeCsv(fx.dir, 'events.csv', ['platform', 'app_user_id', 'fetch_token'], rows);
    const config = testConfig(fx.prefix, fx.sandbox.url, { ingestChunkSize: 10 });
    const seen: { event: keyof SessionEvents; payload: unknown }[] = [];
    const record =
      <K extends keyof SessionEvents>(event: K) =>
      (payload: SessionEvents[K]): void => {
        seen.push({ event, payload });
      };
    let metricsUrl = '';
    let scrapedDuringRun = '';
    const session = new RunSession({
      config,
      logger: silentLogger(),
      runId: 'events',
      sources: [source],
      outDir: join(fx.dir, 'events'),
      metricsPort: 0,
      on: { started: record('started'), ingest: record('ingest'), fatal: record('fatal'), finished: record('finished') },
    });
    session.on('metrics', ({ url }) => {
      metricsUrl = url;
    });
    const result = await session.run(async (step) => {
      await step.ingest();
      scrapedDuringRun = await (await fetch(`${metricsUrl}/metrics`)).text();
    });

    expect(result.exitCode).toBe(0);
    expect(result.summary).toMatchObject({ status: 'complete', rows_succeeded: 30 });
    const order = seen.map((s) => s.event);
    expect(order[0]).toBe('started');
    expect(order.at(-1)).toBe('finished');
    expect(order).not.toContain('fatal');
    expect(seen[0]?.payload).toEqual({ runId: 'events', reportDir: join(fx.dir, 'events') });
    // One ingest event per chunk of 10 rows, the last at the file's last line.
    const ingests = seen.filter((s) => s.event === 'ingest').map((s) => s.payload as SessionEvents['ingest']);
    expect(ingests.length).toBeGreaterThanOrEqual(3);
    expect(ingests.at(-1)).toMatchObject({ source, line: 31, rowsRead: 30 });
    expect(seen.at(-1)?.payload).toBe(result);
    // The metrics followed the ingest events while the session served them; afterwards the server is gone.
    expect(scrapedDuringRun).toContain(`rcm_ingest_line{source="${source}"} 31`);
    await expect(fetch(`${metricsUrl}/metrics`)).rejects.toThrow();
  });

  it('emits fatal once when a fatal answer stops the queue, and ends with exit code 3', async () => {
    const rows = Array.from({ length: 20 }, (_, i) => ['ios', `f-${i}`, token(100 + i)]);
    const source = await writeCsv(fx.dir, 'fatal.csv', ['platform', 'app_user_id', 'fetch_token'], rows);
    const prefix = fx.newPrefix('session-fatal');
    const config = testConfig(prefix, fx.sandbox.url, { apiKey: 'appl_wrong_key', ratePerSecond: 50, concurrency: 2 });
    const fatals: SessionEvents['fatal'][] = [];
    const result = await new RunSession({
      config,
      logger: silentLogger(),
      runId: 'fatal',
      sources: [source],
      outDir: join(fx.dir, 'fatal'),
      on: { fatal: (f) => fatals.push(f) },
    }).run((step) => step.ingest().then(() => undefined));
    expect(fatals).toHaveLength(1);
    expect(fatals[0]?.status).toBe(401);
    expect(result.exitCode).toBe(3);
    expect(result.fatal?.status).toBe(401);
    expect(result.summary.status).toBe('stopped');
  });

  it("a canary's session ends when its rows are done; `report` and a `retry` of it stay partial until the run is continued", async () => {
    const rows = Array.from({ length: 20 }, (_, i) => ['ios', `k-${i}`, token(300 + i, i === 1 ? 'invalid' : '')]);
    const source = await writeCsv(fx.dir, 'canary.csv', ['platform', 'app_user_id', 'fetch_token'], rows);
    const config = testConfig(fx.newPrefix('session-canary'), fx.sandbox.url);
    const finished: SessionEvents['finished'][] = [];
    const canary = await new RunSession({
      config,
      logger: silentLogger(),
      runId: 'canary',
      sources: [source],
      outDir: join(fx.dir, 'canary'),
      on: { finished: (r) => finished.push(r) },
    }).run(async (step) => {
      const ingested = await step.ingest({ limit: 5 });
      expect(ingested).toMatchObject({ partial: true, queued: 5 });
    });
    expect(finished).toHaveLength(1);
    expect(canary.summary).toMatchObject({ status: 'partial', canary: { limit: 5, sent: 5 }, rows_succeeded: 4, rows_failed: 1, rows_pending: 0 });
    expect(canary.exitCode).toBe(1); // one of its rows failed

    const reported = await reportRun({ config, runId: 'canary', outDir: join(fx.dir, 'canary-report') });
    expect(reported.summary).toMatchObject({ status: 'partial', canary: { limit: 5, sent: 5 } });
    // A retry of the canary's failed row ends once that row is done, though the run's ingest is not.
    const retried = await retryRun({ config, logger: silentLogger(), runId: 'canary', includePermanent: true, outDir: join(fx.dir, 'canary-retry') });
    expect(retried.requeued).toBe(1);
    expect(retried.summary).toMatchObject({ status: 'partial', rows_failed: 1, rows_pending: 0 });

    const rest = await new RunSession({ config, logger: silentLogger(), runId: 'canary', sources: [source], outDir: join(fx.dir, 'canary-rest') }).run(async (step) => {
      await step.ingest();
    });
    expect(rest.summary).toMatchObject({ status: 'complete', rows_read: 20, rows_succeeded: 19, rows_failed: 1 });
    expect(rest.summary.canary).toBeUndefined();
  });

  it('runToCompletion leaves no report when stopped before every row has an outcome', async () => {
    const source = await writeCsv(fx.dir, 'partial.csv', ['platform', 'app_user_id', 'fetch_token'], [['ios', 'p-1', token(200)]]);
    const prefix = fx.newPrefix('session-partial');
    const config = testConfig(prefix, fx.sandbox.url);
    const stop = new AbortController();
    const outDir = join(fx.dir, 'partial');
    // No workers here (send: false) and none elsewhere on this prefix: the row stays queued until the stop.
    const result = await new RunSession({ config, logger: silentLogger(), runId: 'partial', sources: [source], outDir, send: false, signal: stop.signal }).runToCompletion(
      async (step) => {
        await step.ingest();
        stop.abort();
      },
    );
    expect(result).toBeUndefined();
    expect(existsSync(join(outDir, 'summary.json'))).toBe(false);
  });
});
