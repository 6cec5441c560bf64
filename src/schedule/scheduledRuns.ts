// Turns each firing of a schedule into a run: expand the source templates for the firing day, ingest, wait
// until every row has an outcome (the row workers of this and other processes send them), write the report.
// The run id follows from the firing time, so a worker that takes over after a crash continues the same run.
import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import { endsWithin } from '../deadline.js';
import { ConfigError, type Config } from '../config.js';
import type { Logger } from '../logger.js';
import { RUNS_QUEUE, bullmqPrefix } from '../redis/keys.js';
import { isCluster } from '../redis/connection.js';
import type { Context } from '../session/context.js';
import { RunSession } from '../session/runSession.js';
import type { ScheduledRunData } from './scheduler.js';
import { expandTemplate } from './template.js';
import { JobWorker } from '../workers/jobWorker.js';

export interface ScheduledRunsDeps {
  config: Config;
  /** the `work` process's connections: its own workers send the firing's rows */
  context: Context;
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
    const log = deps.logger.child({ schedule: data.schedule });
    // This process's workers (and those of every other `work` process) send the rows: the session only ingests,
    // waits for the outcomes and writes the report, and leaves none when stopped first.
    const session = new RunSession({
      config,
      logger: log,
      runId,
      sources,
      send: false,
      context: deps.context,
      signal: stopping.signal,
      pollMs: 500,
      progressEveryMs: 30_000,
    });
    let result;
    try {
      result = await session.runToCompletion(async (step) => {
        step.log.info({ sources }, 'scheduled run started');
        await step.ingest({ columns: data.columns, force: data.force });
      });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      // A missing export: tomorrow's firing may find its own; this one cannot succeed by being tried again.
      log.error({ run: runId, sources }, `scheduled run cannot start: ${err.message}`);
      throw new UnrecoverableError(err.message);
    }
    if (!result) throw new Error(`run ${runId} was interrupted; another worker continues it`);
    const { summary, files } = result;
    log.info({ run: runId, status: summary.status, succeeded: summary.rows_succeeded, failed: summary.rows_failed, report: files.dir }, 'scheduled run finished');
  };

  const worker = new JobWorker<ScheduledRunData, void, string>(RUNS_QUEUE, processor, {
    connection: deps.context.redis,
    prefix: bullmqPrefix(config.prefix, isCluster(deps.context.redis)),
    concurrency: 1,
  });
  worker.on('failed', (job, err) => deps.logger.warn({ schedule: job?.data.schedule, err: err.message }, 'scheduled run did not finish'));
  worker.on('error', (err) => deps.logger.error({ err }, 'scheduled-run worker error'));
  return {
    worker,
    async close() {
      stopping.abort();
      // A stopped firing ends at once; what can hold the close is Redis (workers/jobWorker.ts): bounded like sending.
      if (await endsWithin(worker.close(), config.shutdownTimeoutMs)) return;
      const blocking = await worker.abandon();
      deps.logger.warn(
        { deadlineMs: config.shutdownTimeoutMs, ...(blocking ? { blockingConnection: blocking } : {}) },
        `gave up waiting for the scheduled-run worker to close after ${config.shutdownTimeoutMs} ms${blocking ? `: its job-waiting Redis connection was ${blocking}` : ''}; forcing it (a firing in hand comes back as a stalled job)`,
      );
    },
  };
}
