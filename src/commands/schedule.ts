// `schedule`: nightly backfills. Adds, lists and removes BullMQ job schedulers whose firings `rc-migrate work`
// turns into runs.
import type { Config } from '../config.js';
import { listSchedules, openRunsQueue, removeSchedule, upsertSchedule, type ScheduleInfo, type ScheduleSpec } from '../schedule/scheduler.js';
import { connectRedis } from '../redis/connection.js';

async function withRunsQueue<T>(config: Config, fn: (queue: ReturnType<typeof openRunsQueue>) => Promise<T>): Promise<T> {
  const redis = await connectRedis(config);
  const queue = openRunsQueue(redis, config.prefix);
  try {
    return await fn(queue);
  } finally {
    await queue.close();
    await redis.quit().catch(() => redis.disconnect());
  }
}

export function addSchedule(config: Config, spec: ScheduleSpec): Promise<ScheduleInfo> {
  return withRunsQueue(config, (q) => upsertSchedule(q, spec));
}

export function schedules(config: Config): Promise<ScheduleInfo[]> {
  return withRunsQueue(config, (q) => listSchedules(q));
}

export function deleteSchedule(config: Config, id: string): Promise<boolean> {
  return withRunsQueue(config, (q) => removeSchedule(q, id));
}
