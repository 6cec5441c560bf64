// What every sending process does first (a run, a retry, `work`): lift the fatal stops its keys may lift and
// resume what they stopped (the process was started because the cause was fixed; queue/fatalStop.ts), then start
// a worker with its own keep-alive client, which sends each platform's rows with that platform's key.
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics/metrics.js';
import { RevenueCatClient } from '../revenuecat/client.js';
import { rowsOf, type KeyRing } from '../revenuecat/keyRing.js';
import type { KeyStop } from '../queue/keyStops.js';
import { startReceiptWorker, type ReceiptWorker } from '../workers/receiptWorker.js';
import { AppleLookups } from '../workers/appleLookup.js';
import type { Context } from './context.js';
import { REDIS_RELEASE_MS, type Resources } from './resources.js';

export interface Sending {
  worker: ReceiptWorker;
  /** whether closing the worker had to force it (in-flight requests outlived shutdownTimeoutMs); set once released */
  forced(): boolean;
}

/** Stops grouped by key, with the platforms of each (`ios/android`, or `all`). */
function byKey(stops: readonly KeyStop[]): { key: string; variable: string; message: string; rows: string }[] {
  const groups = new Map<string, { stop: KeyStop; platforms: string[] }>();
  for (const s of stops) {
    const group = groups.get(s.fingerprint) ?? { stop: s, platforms: [] };
    group.platforms.push(s.platform);
    groups.set(s.fingerprint, group);
  }
  return [...groups.values()].map(({ stop, platforms }) => ({ key: stop.key, variable: stop.variable, message: stop.message, rows: rowsOf(platforms) }));
}

/** Starts sending; the client and the worker are released with `resources` (the worker first). */
export async function startSending(ctx: Context, resources: Resources, opts: { config: Config; keys: KeyRing; logger: Logger; metrics?: PipelineMetrics }): Promise<Sending> {
  const { config, logger } = opts;
  const resumed = await ctx.fatal.resume(opts.keys);
  if (resumed.previous) logger.warn({ previous: resumed.previous.message }, 'the queue was stopped by a fatal API answer; resuming it');
  // One line per key, not per platform: a key for every platform would say the same thing eight times.
  for (const g of byKey(resumed.replaced))
    logger.warn({ refused: g.key, variable: g.variable }, `${g.variable} is no longer the key RevenueCat refused (${g.key}): sending its ${g.rows} rows again`);
  for (const g of byKey(resumed.retried)) logger.warn({ key: g.key }, `trying the ${g.rows} rows again after: ${g.message}`);
  for (const g of byKey(resumed.still))
    logger.error({ key: g.key, variable: g.variable }, `${g.variable} is still the key RevenueCat refused (${g.key}): its ${g.rows} rows stay queued until it is replaced`);
  if (resumed.unparked > 0) logger.info({ rows: resumed.unparked }, 'rows parked behind a stopped key are queued again');
  let forced = false;
  const client = resources.add(
    'API client',
    new RevenueCatClient({ baseUrl: config.apiUrl, keys: opts.keys, timeoutMs: config.requestTimeoutMs, connections: config.connections, maxRetryAfterMs: config.maxRetryAfterMs }),
    // After a forced close of the worker below, its requests still in flight are cut off, not waited for.
    (c) => (forced ? c.destroy() : c.close()),
  );
  // Rows given by an Apple transaction id: the App Store Server API lookups, with their own rate scope.
  const appleLookups = resources.add('App Store Server API lookups', await AppleLookups.start(ctx.redis, config, ctx.fatal.keys, logger), (a) => a.close(), {
    withinMs: REDIS_RELEASE_MS,
    leaves: 'its rate controller did not finish its last Redis read, or lookups were still in flight; they are dropped',
  });
  const worker = resources.add(
    'receipt worker',
    await startReceiptWorker({
      config,
      connection: ctx.redis,
      redis: ctx.redis,
      queue: ctx.queue,
      fatal: ctx.fatal,
      client,
      keys: opts.keys,
      logger,
      appleLookups,
      ...(opts.metrics ? { report: opts.metrics } : {}),
    }),
    async (w) => {
      // Requests in flight finish (up to shutdownTimeoutMs) before the client under them closes.
      forced = (await w.close()).forced;
    },
  );
  return { worker, forced: () => forced };
}
