// Turns each firing of a schedule into a run: expand the source templates for the firing day, ingest, wait
// until every row has an outcome (the row workers of this and other processes send them), write the report.
// The run id follows from the firing time, so a worker that takes over after a crash continues the same run.
import { join } from 'node:path';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { ConfigError, type Config } from '../config.js';
import { ingest } from '../ingest/ingester.js';
import { checkSources } from '../ingest/sources.js';
import { RunLedger } from '../ledger/runLedger.js';
import type { Logger } from '../logger.js';
import type { FatalStop } from '../queue/fatalStop.js';
import type { ReceiptsQueue } from '../queue/receiptsQueue.js';
import { writeReport } from '../reports/writeReport.js';
import { waitForOutcomes, watchProgress } from '../commands/session.js';
import type { RedisClient } from '../redis/connection.js';
import { RUNS_QUEUE } from '../redis/keys.js';
import type { ScheduledRunData } from './scheduler.js';
import { expandTemplate } from './template.js';

export interface ScheduledRunsDeps {
  config: Config;
  connection: ConnectionOptions;
  redis: RedisClient;
  receipts: ReceiptsQueue;
  fatal: FatalStop;
  logger: Logger;
}

export interface ScheduledRunsWorker {
  worker: Worker<ScheduledRunData, void, string>;
  close(): Promise<void>;
}

export function scheduledRunId(data: ScheduledRunData, at: number): string {
  return `${data.schedule}-${expandTemplate('{yyyy}{mm}{dd}-{HH}{MM}', { at, ...(data.tz ? { tz: data.tz } : {}) })}`;
}

export function startScheduledRuns(deps: ScheduledRunsDeps): ScheduledRunsWorker {
  const { config } = deps;
  const stopping = new AbortController();

  const processor = async (job: Job<ScheduledRunData, void, string>): Promise<void> => {
    const data = job.data;
    // The firing time, not the time a worker got to it: a late start still migrates the right day.
    const at = Number(job.opts.prevMillis ?? job.timestamp);
    const runId = scheduledRunId(data, at);
    const sources = data.sources.map((t) => expandTemplate(t, { at, ...(data.tz ? { tz: data.tz } : {}), daysAgo: data.daysAgo }));
    const log = deps.logger.child({ run: runId, schedule: data.schedule });
    try {
      await checkSources(sources);
    } catch (err) {
      // Tomorrow's firing may find its export; this one cannot succeed by being tried again.
      log.error({ sources }, `scheduled run cannot start: ${(err as Error).message}`);
      throw err instanceof ConfigError ? new UnrecoverableError(err.message) : err;
    }
    log.info({ sources }, 'scheduled run started');
    const ledger = new RunLedger(deps.redis, config.prefix, runId);
    await ingest(
      { queue: deps.receipts, ledger, logger: log },
      {
        runId,
        sources,
        columns: data.columns,
        force: data.force,
        chunkSize: config.ingestChunkSize,
        maxAttempts: config.maxAttempts,
        highWaterMark: config.highWaterMark,
        signal: stopping.signal,
      },
    );
    const watcher = watchProgress(ledger, log, 30_000);
    try {
      await waitForOutcomes(ledger, stopping.signal, 500);
    } finally {
      clearInterval(watcher);
    }
    if (!(await ledger.state()).complete) throw new Error(`run ${runId} was interrupted; another worker continues it`);
    await ledger.markFinished();
    const fatal = await deps.fatal.reason();
    const { summary, files } = await writeReport(ledger, { dir: join(config.reportDir, runId), ...(fatal ? { fatal } : {}) });
    log.info({ status: summary.status, succeeded: summary.rows_succeeded, failed: summary.rows_failed, report: files.dir }, 'scheduled run finished');
  };

  const worker = new Worker<ScheduledRunData, void, string>(RUNS_QUEUE, processor, { connection: deps.connection, prefix: config.prefix, concurrency: 1 });
  worker.on('failed', (job, err) => deps.logger.warn({ schedule: job?.data.schedule, err: err.message }, 'scheduled run did not finish'));
  worker.on('error', (err) => deps.logger.error({ err }, 'scheduled-run worker error'));
  return {
    worker,
    async close() {
      stopping.abort();
      await worker.close();
    },
  };
}
