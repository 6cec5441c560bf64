// `work`: long-running workers that send whatever any run has queued, on as many machines as you like, and
// carry out scheduled runs.
import type { Config } from '../config.js';
import { exitCodeFor, type ExitCode } from '../exitCodes.js';
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics/metrics.js';
import { checkOptions, workOptionsRule } from '../options.js';
import { keyRingOf } from '../revenuecat/keyRing.js';
import { startScheduledRuns } from '../schedule/scheduledRuns.js';
import { openContext } from '../session/context.js';
import { watchFatal } from '../session/fatalWatch.js';
import { Resources } from '../session/resources.js';
import { startSending } from '../session/sending.js';

export interface WorkOptions {
  config: Config;
  logger: Logger;
  metrics?: PipelineMetrics;
  /** serve this process's metrics at /metrics on this port (0 picks a free one) */
  metricsPort?: number;
}

export interface Workers {
  /** Resolves when the queue is paused by a fatal API answer, with its message. */
  fatal: Promise<string>;
  /** where this process's metrics are served (with `metricsPort`) */
  metricsUrl?: string;
  /** Lets in-flight requests finish (up to shutdownTimeoutMs), then releases every connection. */
  close(): Promise<{ forced: boolean }>;
}

export async function startWorkers(opts: WorkOptions): Promise<Workers> {
  checkOptions(workOptionsRule, opts, 'startWorkers');
  const { config, logger } = opts;
  const keys = keyRingOf(config);
  const resources = new Resources(logger);
  try {
    const ctx = await openContext(config, resources);
    let metrics = opts.metrics;
    let metricsUrl: string | undefined;
    if (opts.metricsPort !== undefined) {
      // Loaded only when asked for: express and the dashboard weigh ~25 MB.
      const { serveProcessMetrics } = await import('../metrics/server.js');
      const served = await serveProcessMetrics({ port: opts.metricsPort, ...(metrics ? { metrics } : {}) });
      resources.add('metrics server', served.server, (s) => s.close());
      metrics = served.metrics;
      metricsUrl = served.server.url;
    }
    const sending = await startSending(ctx, resources, { config, keys, logger, ...(metrics ? { metrics } : {}) });
    // Scheduled runs (rc-migrate schedule) are started by whichever worker process picks up their firing.
    const scheduled = startScheduledRuns({ config, context: ctx, logger });
    resources.add('scheduled-run worker', scheduled, (s) => s.close());
    const fatal = new Promise<string>((resolve) => watchFatal(ctx.fatal, resources, (reason) => resolve(reason.message)));
    logger.info({ concurrency: config.concurrency, ratePerSecond: config.ratePerSecond }, 'workers started');
    return {
      fatal,
      ...(metricsUrl ? { metricsUrl } : {}),
      async close() {
        await resources.releaseAll();
        return { forced: sending.forced() };
      },
    };
  } catch (err) {
    await resources.releaseAll();
    throw err;
  }
}

/** `work`'s exit code: 3 after a fatal answer, 4 when requests in flight had to be cut off, else 0. */
export function workExitCode(end: { fatal: boolean; forced: boolean }): ExitCode {
  return exitCodeFor({ stopped: end.fatal, incomplete: end.forced });
}
