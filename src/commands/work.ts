// `work`: long-running workers that send whatever any run has queued, on as many machines as you like.
import { requireApiKey, type Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startScheduledRuns } from '../schedule/scheduledRuns.js';
import { openContext } from './context.js';
import { startSending } from './session.js';
import type { PipelineMetrics } from '../metrics/metrics.js';

export interface Workers {
  /** Resolves when the queue is paused by a fatal API answer, with its message. */
  fatal: Promise<string>;
  /** Lets in-flight requests finish (up to shutdownTimeoutMs), then releases every connection. */
  close(): Promise<{ forced: boolean }>;
}

export async function startWorkers(opts: { config: Config; logger: Logger; metrics?: PipelineMetrics }): Promise<Workers> {
  const { config, logger } = opts;
  const apiKey = requireApiKey(config);
  const ctx = await openContext(config);
  const { worker, client } = await startSending(ctx, { config, apiKey, logger, ...(opts.metrics ? { metrics: opts.metrics } : {}) });
  // Scheduled runs (rc-migrate schedule) are started by whichever worker process picks up their firing.
  const scheduled = startScheduledRuns({ config, connection: ctx.redis, redis: ctx.redis, receipts: ctx.queue, fatal: ctx.fatal, logger });
  let watch: NodeJS.Timeout | undefined;
  const fatal = new Promise<string>((resolve) => {
    watch = setInterval(() => {
      void ctx.fatal.reason().then((r) => r && resolve(r.message));
    }, 500);
  });
  logger.info({ concurrency: config.concurrency, ratePerSecond: config.ratePerSecond }, 'workers started');
  return {
    fatal,
    async close() {
      clearInterval(watch);
      await scheduled.close();
      const result = await worker.close();
      await client.close();
      await ctx.close();
      return result;
    },
  };
}
