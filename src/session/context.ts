// The shared resources of a command or a session: one Redis connection, the receipts queue and the fatal-stop
// flag, released with the caller's resource list.
import { ConfigError, type Config } from '../config.js';
import { RunLedger } from '../ledger/runLedger.js';
import { FatalStop } from '../queue/fatalStop.js';
import { openReceiptsQueue, type ReceiptsQueue } from '../queue/receiptsQueue.js';
import { anotherConnection, connectRedis, type RedisClient } from '../redis/connection.js';
import { REDIS_RELEASE_MS, withResources, type Resources } from './resources.js';

export interface Context {
  config: Config;
  redis: RedisClient;
  queue: ReceiptsQueue;
  fatal: FatalStop;
  ledger(runId: string): RunLedger;
  /** The ledger of a run that must already exist; a ConfigError says what to check otherwise. */
  existingLedger(runId: string): Promise<RunLedger>;
}

/**
 * Holds a Redis connection until release. QUIT waits for the answers to the commands before it: with Redis gone
 * they never come (the connection waits to reconnect), so after a while it is dropped instead.
 */
function holdConnection(resources: Resources, name: string, redis: RedisClient): RedisClient {
  return resources.add(name, redis, (r) => r.quit().catch(() => r.disconnect()), {
    withinMs: REDIS_RELEASE_MS,
    leaves: 'Redis did not answer; the connection is dropped with the commands it had not answered',
    force: (r) => r.disconnect(),
  });
}

export async function openContext(config: Config, resources: Resources): Promise<Context> {
  const redis = holdConnection(resources, 'Redis connection', await connectRedis(config));
  // The queue has a connection of its own. Redis answers each connection's commands in order, so on a shared one
  // every ledger call of the ingester (admitting a chunk, its progress mark) waited behind the jobs of the chunks
  // before it, several KB each: taken apart, the two interleave.
  const queueRedis = holdConnection(resources, 'queue connection', anotherConnection(redis));
  const queue = resources.add('receipts queue', openReceiptsQueue(queueRedis, config.prefix), (q) => q.close());
  return {
    config,
    redis,
    queue,
    fatal: new FatalStop(redis, config.prefix, queue),
    ledger: (runId) => new RunLedger(redis, config.prefix, runId),
    async existingLedger(runId) {
      const ledger = new RunLedger(redis, config.prefix, runId);
      if (!(await ledger.exists())) throw new ConfigError(`no run "${runId}" in Redis at prefix "${config.prefix}": check --run-id and REDIS_URL`);
      return ledger;
    },
  };
}

/** Opens a context for one call and releases it (and whatever `fn` added to the list) when the call ends. */
export function withContext<T>(config: Config, fn: (ctx: Context, resources: Resources) => Promise<T>): Promise<T> {
  return withResources(async (resources) => fn(await openContext(config, resources), resources));
}
