// The shared resources of a command: one Redis connection, the queue, and the fatal-stop flag.
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { RunLedger } from '../ledger/runLedger.js';
import { FatalStop } from '../queue/fatalStop.js';
import { openReceiptsQueue, type ReceiptsQueue } from '../queue/receiptsQueue.js';
import { connectRedis } from '../redis.js';

export interface Context {
  config: Config;
  redis: Redis;
  queue: ReceiptsQueue;
  fatal: FatalStop;
  ledger(runId: string): RunLedger;
  close(): Promise<void>;
}

export async function openContext(config: Config): Promise<Context> {
  const redis = await connectRedis(config.redisUrl);
  const queue = openReceiptsQueue(redis, config.prefix);
  return {
    config,
    redis,
    queue,
    fatal: new FatalStop(redis, config.prefix, queue),
    ledger: (runId) => new RunLedger(redis, config.prefix, runId),
    async close() {
      await queue.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
