// `schedule`: nightly backfills. Adds, lists and removes BullMQ job schedulers whose firings `rc-migrate work`
// turns into runs.
import type { Config } from '../config.js';
import { connectRedis } from '../redis/connection.js';
import { checkOptions, scheduleIdRule, scheduleSpecRule } from '../options.js';
import { listSchedules, openRunsQueue, removeSchedule, upsertSchedule, type RunsQueue, type ScheduleInfo, type ScheduleSpec } from '../schedule/scheduler.js';
import { withResources } from '../session/resources.js';

function withRunsQueue<T>(config: Config, fn: (queue: RunsQueue) => Promise<T>): Promise<T> {
  return withResources(async (resources) => {
    const redis = resources.add('Redis connection', await connectRedis(config), (r) => r.quit().catch(() => r.disconnect()));
    return fn(resources.add('runs queue', openRunsQueue(redis, config.prefix), (q) => q.close()));
  });
}

export async function addSchedule(config: Config, spec: ScheduleSpec): Promise<ScheduleInfo> {
  checkOptions(scheduleSpecRule, spec, 'addSchedule');
  return withRunsQueue(config, (q) => upsertSchedule(q, spec));
}

export async function schedules(config: Config): Promise<ScheduleInfo[]> {
  return withRunsQueue(config, (q) => listSchedules(q));
}

export async function deleteSchedule(config: Config, id: string): Promise<boolean> {
  checkOptions(scheduleIdRule, id, 'deleteSchedule');
  return withRunsQueue(config, (q) => removeSchedule(q, id));
}
