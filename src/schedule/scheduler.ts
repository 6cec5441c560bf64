// Scheduled runs are BullMQ job schedulers on a queue of their own: each firing adds one job that a
// `rc-migrate work` process turns into a run (see scheduledRuns.ts).
import { Queue, type ConnectionOptions } from 'bullmq';
import { ConfigError } from '../config.js';
import type { ColumnOptions } from '../ingest/columns.js';
import { QUEUES, bullmqPrefix } from '../redis/keys.js';
import { isCluster } from '../redis/connection.js';
import { checkOptions, scheduleSpecRule } from '../options.js';

export const SCHEDULED_RUN_JOB = 'scheduled-run';

export interface ScheduledRunData {
  /** the scheduler's id; run ids are `<id>-<yyyymmdd>-<HHMM>` of the firing time */
  schedule: string;
  /** source templates ({yyyy}, {mm}, {dd}, {date}, {HH}, {MM}) */
  sources: string[];
  columns: ColumnOptions;
  force: boolean;
  tz?: string;
  daysAgo: number;
}

export interface ScheduleSpec {
  id: string;
  cron: string;
  tz?: string;
  sources: string[];
  columns?: ColumnOptions;
  force?: boolean;
  daysAgo?: number;
}

export interface ScheduleInfo {
  id: string;
  cron: string;
  tz?: string;
  next?: string;
  sources: string[];
  daysAgo: number;
}

export type RunsQueue = Queue<ScheduledRunData, void, string>;

export function openRunsQueue(connection: ConnectionOptions, prefix: string): RunsQueue {
  return new Queue<ScheduledRunData, void, string>(QUEUES.runs, { connection, prefix: bullmqPrefix(prefix, isCluster(connection)) });
}

export async function upsertSchedule(queue: RunsQueue, spec: ScheduleSpec): Promise<ScheduleInfo> {
  // The rules of options.ts: id, cron, time zone, sources, columns, days ago.
  checkOptions(scheduleSpecRule, spec, 'upsertSchedule');
  const data: ScheduledRunData = {
    schedule: spec.id,
    sources: spec.sources,
    columns: spec.columns ?? {},
    force: spec.force ?? false,
    ...(spec.tz ? { tz: spec.tz } : {}),
    daysAgo: spec.daysAgo ?? 0,
  };
  try {
    await queue.upsertJobScheduler(
      spec.id,
      { pattern: spec.cron, ...(spec.tz ? { tz: spec.tz } : {}) },
      {
        name: SCHEDULED_RUN_JOB,
        data,
        // A worker stopped mid-run leaves the job to another one, which continues the same run id.
        opts: { attempts: 5, backoff: { type: 'fixed', delay: 10_000 }, removeOnComplete: 100, removeOnFail: 100 },
      },
    );
  } catch (err) {
    throw new ConfigError(`--cron "${spec.cron}" was not accepted (${(err as Error).message}): use five or six cron fields, e.g. "0 3 * * *"`);
  }
  const info = (await listSchedules(queue)).find((s) => s.id === spec.id);
  if (!info) throw new Error(`schedule ${spec.id} was not stored`);
  return info;
}

export async function listSchedules(queue: RunsQueue): Promise<ScheduleInfo[]> {
  const all = await queue.getJobSchedulers(0, -1, true);
  return all.map((s) => {
    const data = s.template?.data;
    return {
      id: s.key,
      cron: s.pattern ?? `every ${s.every} ms`,
      ...(s.tz ? { tz: s.tz } : {}),
      ...(s.next ? { next: new Date(s.next).toISOString() } : {}),
      sources: data?.sources ?? [],
      daysAgo: data?.daysAgo ?? 0,
    };
  });
}

export async function removeSchedule(queue: RunsQueue, id: string): Promise<boolean> {
  return queue.removeJobScheduler(id);
}
