// What every sending process does first (a run, a retry, `work`): resume a queue that a fatal answer stopped
// (the process was started because the cause was fixed), then start a worker with its own keep-alive client.
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics/metrics.js';
import { RevenueCatClient } from '../revenuecat/client.js';
import { startReceiptWorker, type ReceiptWorker } from '../workers/receiptWorker.js';
import type { Context } from './context.js';
import type { Resources } from './resources.js';

export interface Sending {
  worker: ReceiptWorker;
  /** whether closing the worker had to force it (in-flight requests outlived shutdownTimeoutMs); set once released */
  forced(): boolean;
}

/** Starts sending; the client and the worker are released with `resources` (the worker first). */
export async function startSending(ctx: Context, resources: Resources, opts: { config: Config; apiKey: string; logger: Logger; metrics?: PipelineMetrics }): Promise<Sending> {
  const { config, logger } = opts;
  const previous = await ctx.fatal.clear();
  if (previous) logger.warn({ previous: previous.message }, 'the queue was stopped by a fatal API answer; resuming it');
  const client = resources.add(
    'API client',
    new RevenueCatClient({ baseUrl: config.apiUrl, apiKey: opts.apiKey, timeoutMs: config.requestTimeoutMs, connections: config.connections }),
    (c) => c.close(),
  );
  let forced = false;
  const worker = resources.add(
    'receipt worker',
    await startReceiptWorker({
      config,
      connection: ctx.redis,
      redis: ctx.redis,
      queue: ctx.queue,
      fatal: ctx.fatal,
      client,
      logger,
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
    }),
    async (w) => {
      // Requests in flight finish (up to shutdownTimeoutMs) before the client under them closes.
      forced = (await w.close()).forced;
    },
  );
  return { worker, forced: () => forced };
}
