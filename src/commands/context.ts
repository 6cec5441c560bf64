// The shared resources of a command: one Redis connection, the queue, and the fatal-stop flag.
import type { RedisClient } from '../redis/connection.js';
import { ConfigError, type Config } from '../config.js';
import { RunLedger } from '../ledger/runLedger.js';
import { FatalStop } from '../queue/fatalStop.js';
import { openReceiptsQueue, type ReceiptsQueue } from '../queue/receiptsQueue.js';
import { connectRedis } from '../redis/connection.js';

export interface Context {
  config: Config;
  redis: RedisClient;
  queue: ReceiptsQueue;
  fatal: FatalStop;
  ledger(runId: string): RunLedger;
  /** The ledger of a run that must already exist; a ConfigError says what to check otherwise. */
  existingLedger(runId: string): Promise<RunLedger>;
  close(): Promise<void>;
}

export async function openContext(config: Config): Promise<Context> {
  const redis = await connectRedis(config);
  const queue = openReceiptsQueue(redis, config.prefix);
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
    async close() {
      await queue.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
