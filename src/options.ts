// The rules of the library's options, in one place (as pg-boss's attorney): every public function (runMigration,
// ingestSources, retryRun, addSchedule, runStatus, …) parses its own options with these schemas, so a library
// caller gets the same answer as a CLI user, and the CLI only maps argv to options. A failure is a ConfigError
// (exit code 2) whose message says what to fix.
import { defaultRepeatStrategy } from 'bullmq';
import { z } from 'zod';
import { ConfigError, runIdRule } from './config.js';
import { mapTarget } from './ingest/columns.js';
import { isS3Url } from './ingest/s3Url.js';
import { PLATFORMS } from './revenuecat/fields.js';

export { runIdRule };

/** How a number the user gave reads in a message ("x" on the command line arrives as NaN). */
const shown = (v: unknown): string => (typeof v === 'number' && Number.isNaN(v) ? 'not a number' : String(v));

/** A rule: a schema whose custom messages are whole sentences (zod's own messages get the option's name). */
const rule =
  <T>(check: (v: T) => boolean, message: (v: T) => string) =>
  (schema: z.ZodType<T>) =>
    schema.refine(check, { error: (iss) => message(iss.input as T) });

const SCHEDULE_ID = /^[A-Za-z0-9_.-]{1,40}$/;
export const scheduleIdRule = rule<string>(
  (v) => SCHEDULE_ID.test(v),
  (v) => `schedule id "${v}" is not valid: use 1-40 letters, digits, "_", "." or "-"`,
)(z.string());

/** Whether Intl knows the zone (an IANA name such as Europe/Berlin, or UTC). */
function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const timeZoneRule = rule<string>(isTimeZone, (v) => `--tz ${v} is not a time zone: use an IANA name such as Europe/Berlin or UTC`)(z.string());

/** Why BullMQ's cron parser refuses a pattern, or undefined when it takes it (five fields, or six with seconds). */
function cronProblem(pattern: string): string | undefined {
  const fields = pattern.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6) return `${fields} field${fields === 1 ? '' : 's'}`;
  try {
    defaultRepeatStrategy(Date.now(), { pattern });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
export const cronRule = z.string().superRefine((pattern, ctx) => {
  const problem = cronProblem(pattern);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `--cron "${pattern}" was not accepted (${problem}): use five or six cron fields, e.g. "0 3 * * *"` });
});

export const portRule = rule<number>(
  (v) => Number.isInteger(v) && v >= 0 && v <= 65535,
  (v) => `port ${shown(v)} is not a port number: give 0-65535 (0 picks a free one)`,
)(z.custom<number>());

/** Sources as the user named them: local paths or s3:// URLs (whether they exist is checked by checkSources). */
export const sourcesRule = z
  .array(z.string().refine((s) => s.trim() !== '', { error: 'a source is an empty string: name a CSV file or an s3://bucket/prefix URL' }))
  .refine((s) => s.length > 0, { error: 'no source given: name one or more CSV files (.csv or .csv.gz) or s3://bucket/prefix URLs' })
  .superRefine((sources, ctx) => {
    for (const s of sources) {
      if (/^s3:/i.test(s) && !isS3Url(s)) ctx.addIssue({ code: 'custom', message: `source ${s} is not a valid S3 URL: write it as s3://bucket/prefix` });
    }
  });

/** --map column=target: targets follow ingest/columns.ts's rule (a field in any case, platform, or a $attribute). */
export const columnMapRule = z.record(z.string(), z.string()).superRefine((map, ctx) => {
  for (const [column, target] of Object.entries(map)) {
    if (column.trim() === '') ctx.addIssue({ code: 'custom', message: `--map =${target}: name the column, e.g. --map receipt_data=fetch_token` });
    const planned = mapTarget(target);
    if ('error' in planned) ctx.addIssue({ code: 'custom', message: `--map ${column}=${target}: ${planned.error}` });
  }
});

export const columnsRule = z.object({
  platform: z.enum(PLATFORMS, { error: (iss) => `platform "${String(iss.input)}" is not one of ${PLATFORMS.join(', ')}` }).optional(),
  map: columnMapRule.optional(),
  attributes: z.array(z.string().refine((a) => a.trim() !== '', { error: '--attribute needs a column name' })).optional(),
});

export const daysAgoRule = rule<number>(
  (v) => Number.isInteger(v) && v >= 0,
  (v) => `--days-ago ${shown(v)}: give a whole number of days, 0 or more`,
)(z.custom<number>());

const dirRule = z.string().refine((d) => d.trim() !== '', { error: 'the report directory (--out) is an empty string' });

/** --on-conflict: what to do with a row whose fetch token another app_user_id already has. */
export const onConflictRule = z.enum(['hold', 'send'], {
  error: (iss) => `--on-conflict ${String(iss.input)}: give hold (the default: list the row in conflicts.csv, do not send it) or send`,
});

/** --limit N: a canary of N rows. */
export const limitRule = rule<number>(
  (v) => Number.isInteger(v) && v >= 1,
  (v) => `--limit ${shown(v)}: give the number of rows the canary sends, a whole number of 1 or more`,
)(z.custom<number>());

// Options of the public functions. Objects (config, logger, signal, metrics, listeners) pass through untouched.

export const runOptionsRule = z.looseObject({
  sources: sourcesRule,
  runId: runIdRule.optional(),
  outDir: dirRule.optional(),
  columns: columnsRule.optional(),
  force: z.boolean().optional(),
  onConflict: onConflictRule.optional(),
  limit: limitRule.optional(),
  metricsPort: portRule.optional(),
});

export const ingestOptionsRule = z.looseObject({
  sources: sourcesRule,
  runId: runIdRule,
  columns: columnsRule.optional(),
  force: z.boolean().optional(),
  onConflict: onConflictRule.optional(),
});

export const planOptionsRule = z.looseObject({
  sources: sourcesRule,
  planId: runIdRule.optional(),
  outDir: dirRule.optional(),
  columns: columnsRule.optional(),
  force: z.boolean().optional(),
  onConflict: onConflictRule.optional(),
});

export const runRefRule = z.looseObject({ runId: runIdRule, outDir: dirRule.optional() });

export const retryOptionsRule = z.looseObject({
  runId: runIdRule,
  includePermanent: z.boolean().optional(),
  codes: z.array(z.string().refine((c) => c.trim() !== '', { error: '--codes holds an empty code: list codes or reasons separated by commas, e.g. 7101,timeout' })).optional(),
  wait: z.boolean().optional(),
  outDir: dirRule.optional(),
});

export const scheduleSpecRule = z.looseObject({
  id: scheduleIdRule,
  cron: cronRule,
  tz: timeZoneRule.optional(),
  sources: z.array(z.string()).refine((s) => s.length > 0, { error: 'a schedule needs at least one source (template)' }),
  columns: columnsRule.optional(),
  force: z.boolean().optional(),
  daysAgo: daysAgoRule.optional(),
});

export const serveOptionsRule = z.looseObject({ port: portRule, host: z.string().min(1).optional() });

export const workOptionsRule = z.looseObject({ metricsPort: portRule.optional() });

/**
 * Checks a public function's options against its rule and returns them. Every problem is reported at once; messages of the rules
 * are whole sentences, zod's own ones (a wrong type from a library caller) are prefixed with the option's path.
 */
export function checkOptions<T>(rule: z.ZodType, options: T, what: string): T {
  const parsed = rule.safeParse(options);
  if (parsed.success) return options;
  const messages = parsed.error.issues.map((issue) => (issue.code === 'custom' ? issue.message : `${what}: ${issue.path.join('.') || 'options'}: ${issue.message}`));
  throw new ConfigError([...new Set(messages)].join('\n'));
}
