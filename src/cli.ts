#!/usr/bin/env node
// rc-migrate: the command-line face of the library. Each command parses its flags, loads and validates the
// configuration once, calls one library function, prints what happened and exits with a documented code.
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadConfig, type Config } from './config.js';
import { EXIT } from './exitCodes.js';
import type { ColumnOptions } from './ingest/columns.js';
import { parsePlatform, PLATFORMS, isReceiptField } from './revenuecat/fields.js';
import { createLogger } from './logger.js';
import type { RunStatus } from './commands/status.js';
import type { PipelineMetrics } from './metrics/metrics.js';
import { ingestProgressLine, runProgressBar } from './progress.js';
import type { MonitorServer } from './metrics/server.js';
import type { Summary } from './reports/summary.js';

// Each command loads its own modules when it runs: an `ingest` process then carries neither the HTTP client,
// the report renderer, the sandbox nor the dashboard, and stays small on a 50-million-row file.

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Flags shared by every command that talks to Redis or the API; each overrides one config key. */
function withConfigFlags(cmd: Command): Command {
  return cmd
    .option('--redis <url>', 'Redis URL (env REDIS_URL)')
    .option('--prefix <prefix>', 'Redis key prefix (env RC_MIGRATE_PREFIX)')
    .option('--api-url <url>', 'RevenueCat API base URL (env REVENUECAT_API_URL)')
    .option('--rate <rate>', 'request rate for the whole queue, across all workers: 20, 20/s or 1200/min (env RC_MIGRATE_RATE)')
    .option('--concurrency <n>', 'requests in flight per process (env RC_MIGRATE_CONCURRENCY)')
    .option('--max-attempts <n>', 'attempts per row for transient failures (env RC_MIGRATE_MAX_ATTEMPTS)')
    .option('--timeout <ms>', 'request timeout in ms (env RC_MIGRATE_TIMEOUT_MS)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env LOG_LEVEL)')
    .option('--high-water-mark <rows>', 'ingest pauses while more rows than this wait in the queue; 0 = never (env RC_MIGRATE_HIGH_WATER_MARK)');
}

function withColumnFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--platform <platform>', 'platform of files without a platform column').choices([...PLATFORMS]))
    .option('--map <column=field>', 'read a column as an API field (repeatable)', collect)
    .option('--attribute <name>', 'send a column as a subscriber attribute (repeatable)', collect)
    .option('--force', 'send rows again even if an earlier run migrated them');
}

interface ConfigFlags {
  redis?: string;
  prefix?: string;
  apiUrl?: string;
  rate?: string;
  concurrency?: string;
  maxAttempts?: string;
  timeout?: string;
  logLevel?: string;
  highWaterMark?: string;
  out?: string;
}

function configFrom(flags: ConfigFlags): Config {
  return loadConfig({
    overrides: {
      redisUrl: flags.redis,
      prefix: flags.prefix,
      apiUrl: flags.apiUrl,
      ratePerSecond: flags.rate,
      concurrency: flags.concurrency,
      maxAttempts: flags.maxAttempts,
      requestTimeoutMs: flags.timeout,
      logLevel: flags.logLevel,
      highWaterMark: flags.highWaterMark,
    },
  });
}

interface ColumnFlags {
  platform?: string;
  map?: string[];
  attribute?: string[];
  force?: boolean;
}

function columnsFrom(flags: ColumnFlags): ColumnOptions {
  const map: Record<string, string> = {};
  for (const pair of flags.map ?? []) {
    const eq = pair.lastIndexOf('=');
    const column = pair.slice(0, eq).trim();
    const field = pair.slice(eq + 1).trim();
    if (eq <= 0 || !field) throw new ConfigError(`--map ${pair}: write it as column=field, e.g. --map receipt_data=fetch_token`);
    if (!isReceiptField(field) && field !== 'platform') throw new ConfigError(`--map ${pair}: "${field}" is not a POST /v1/receipts field`);
    map[column] = field;
  }
  const platform = flags.platform ? parsePlatform(flags.platform) : undefined;
  return { ...(platform ? { platform } : {}), map, attributes: flags.attribute ?? [] };
}

/** With --metrics-port, this process's own metrics are served at /metrics (and /healthz) while it works. */
async function processMetrics(port: string | undefined): Promise<{ metrics?: PipelineMetrics; server?: MonitorServer }> {
  if (port === undefined) return {};
  const n = Number(port);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`--metrics-port ${port}: give a port number (0 picks a free one)`);
  const { PipelineMetrics } = await import('./metrics/metrics.js');
  const metrics = new PipelineMetrics({ defaultMetrics: true });
  // Loaded only when asked for: express and the dashboard weigh ~25 MB that an ingest need not carry.
  const { startMonitorServer } = await import('./metrics/server.js');
  const server = await startMonitorServer({ port: n, registry: metrics.registry, health: async () => true });
  process.stderr.write(`metrics at ${server.url}/metrics\n`);
  return { metrics, server };
}

/** SIGINT/SIGTERM abort the controller once; a second signal exits at once. */
function stopOnSignals(onStop: () => void): AbortSignal {
  const controller = new AbortController();
  let signalled = false;
  const handler = (sig: NodeJS.Signals): void => {
    if (signalled) process.exit(EXIT.INCOMPLETE);
    signalled = true;
    process.stderr.write(`\n${sig}: finishing requests in flight (send again to quit at once)\n`);
    controller.abort();
    onStop();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return controller.signal;
}

function printSummary(summary: Summary, dir: string): void {
  const rows: [string, string | number][] = [
    ['rows read', summary.rows_read],
    ['succeeded', summary.rows_succeeded],
    ['failed', summary.rows_failed],
    ['rejected', summary.rows_rejected],
    ['duplicates', summary.rows_duplicate],
    ['already migrated', summary.already_migrated],
    ['not as expected', summary.rows_mismatched + (summary.verify?.mismatched ?? 0)],
    ['still queued', summary.rows_pending],
    ['requests sent', summary.requests_sent],
    ['report', dir],
  ];
  const lines = [`run ${summary.run_id}: ${summary.status}`, ...rows.map(([k, v]) => `  ${k.padEnd(17)} ${v}`)];
  if (summary.fatal) lines.push(`  STOPPED: ${summary.fatal.message}`, '  fix the cause and run the same command again: queued rows are kept');
  process.stdout.write(`${lines.join('\n')}\n`);
}

function formatStatus(runId: string, st: RunStatus): string {
  const s = st.state;
  const eta = st.etaSeconds === null ? 'unknown' : `${Math.floor(st.etaSeconds / 60)}m${String(st.etaSeconds % 60).padStart(2, '0')}s`;
  const lines = [
    `run ${runId}: ${st.status}${st.fatal ? ` (${st.fatal})` : ''}`,
    `  read ${s.rows_read} · queued ${s.rows_queued} · succeeded ${s.rows_succeeded} · failed ${s.rows_failed} · rejected ${s.rows_rejected} · duplicates ${s.rows_duplicate} · already migrated ${s.rows_already_migrated}`,
    `  pace ${st.rowsPerSecond.toFixed(1)} rows/s${st.sharedRate ? ` (request rate ${st.sharedRate.rate.toFixed(1)}/s of ${st.sharedRate.ceiling}/s)` : ''} · waiting in queue ${st.queueWaiting} · ETA ${eta}`,
  ];
  if (st.recentErrors.length > 0) {
    lines.push('  last errors:');
    for (const e of st.recentErrors.slice(0, 5)) lines.push(`    ${e.at} ${e.src}:${e.line} ${e.reason}: ${e.message}`);
  }
  return `${lines.join('\n')}\n`;
}

export function buildProgram(): Command {
  const program = new Command('rc-migrate')
    .description('Bulk receipt migration for RevenueCat: CSV → BullMQ → POST /v1/receipts → reports')
    .version('0.1.0')
    .exitOverride();

  withColumnFlags(
    withConfigFlags(
      program
        .command('run')
        .description('ingest, send and report in one process; waits until every row has an outcome')
        .argument('<source...>', 'CSV files (.csv or .csv.gz)')
        .option('--run-id <id>', 'run id; give an existing one to continue it (default: a new id)')
        .option('--out <dir>', 'report directory (default reports/<run-id>)')
        .option('--metrics-port <port>', 'serve this process\'s metrics at /metrics on this port'),
    ),
  ).action(async (sources: string[], flags: ConfigFlags & ColumnFlags & { runId?: string; metricsPort?: string }) => {
    const config = configFrom(flags);
    const logger = createLogger(config.logLevel);
    const signal = stopOnSignals(() => undefined);
    const { metrics, server } = await processMetrics(flags.metricsPort);
    // At a terminal a progress bar replaces the periodic progress log lines.
    const bar = process.stderr.isTTY ? runProgressBar() : undefined;
    try {
      const { runMigration } = await import('./commands/run.js');
    const result = await runMigration({
        config,
        logger,
        sources,
        ...(bar ? { onState: bar.onState, progressEveryMs: 0 } : {}),
        columns: columnsFrom(flags),
        force: flags.force === true,
        signal,
        ...(metrics ? { metrics } : {}),
        ...(flags.runId ? { runId: flags.runId } : {}),
        ...(flags.out ? { outDir: flags.out } : {}),
      });
      bar?.stop();
      printSummary(result.summary, result.files.dir);
      process.exitCode = result.exitCode;
    } finally {
      bar?.stop();
      await server?.close();
    }
  });

  withColumnFlags(
    withConfigFlags(
      program
        .command('ingest')
        .description('read sources and queue their rows for `rc-migrate work`')
        .argument('<source...>', 'CSV files (.csv or .csv.gz)')
        .requiredOption('--run-id <id>', 'run to add the rows to'),
    ),
  ).action(async (sources: string[], flags: ConfigFlags & ColumnFlags & { runId: string }) => {
    const config = configFrom(flags);
    const signal = stopOnSignals(() => undefined);
    const logger = createLogger(config.logLevel);
    // At a terminal a progress line; elsewhere a log line every 5 s.
    const line = process.stderr.isTTY ? ingestProgressLine() : undefined;
    let lastLog = Date.now();
    const onProgress =
      line?.onProgress ??
      ((p: { source: string; line: number; rowsRead: number }): void => {
        if (Date.now() - lastLog < 5000) return;
        lastLog = Date.now();
        logger.info({ run: flags.runId, source: p.source, line: p.line, read: p.rowsRead }, 'progress');
      });
    const { ingestSources } = await import('./commands/ingest.js');
    const { result, exitCode } = await ingestSources({
      config,
      logger,
      sources,
      runId: flags.runId,
      columns: columnsFrom(flags),
      force: flags.force === true,
      signal,
      onProgress,
    }).finally(() => line?.stop());
    process.stdout.write(
      `run ${flags.runId}: queued ${result.queued}, rejected ${result.rejected}, duplicates ${result.duplicates}, already migrated ${result.alreadyMigrated}, already done ${result.alreadyDone}, resumed past ${result.resumedRows}${result.aborted ? ' (interrupted)' : ''}\n`,
    );
    process.exitCode = exitCode;
  });

  withConfigFlags(
    program
      .command('work')
      .description('send queued rows (and carry out scheduled runs) until SIGTERM/SIGINT')
      .option('--metrics-port <port>', 'serve this process\'s metrics at /metrics on this port'),
  ).action(async (flags: ConfigFlags & { metricsPort?: string }) => {
    const config = configFrom(flags);
    const logger = createLogger(config.logLevel);
    const { metrics, server } = await processMetrics(flags.metricsPort);
    const { startWorkers } = await import('./commands/work.js');
    const workers = await startWorkers({ config, logger, ...(metrics ? { metrics } : {}) });
    const stopped = new Promise<'signal'>((resolve) => stopOnSignals(() => resolve('signal')));
    const why = await Promise.race([stopped, workers.fatal]);
    const { forced } = await workers.close();
    await server?.close();
    if (why !== 'signal') {
      process.stderr.write(`stopped: ${why}\nfix the cause and start the workers again: queued rows are kept\n`);
      process.exitCode = EXIT.FATAL;
    } else {
      process.exitCode = forced ? EXIT.INCOMPLETE : EXIT.OK;
    }
  });

  program
    .command('report')
    .description("write a run's report from its outcomes (partial while the run is going)")
    .requiredOption('--run-id <id>', 'run to report')
    .option('--out <dir>', 'report directory (default reports/<run-id>)')
    .option('--redis <url>', 'Redis URL (env REDIS_URL)')
    .option('--prefix <prefix>', 'Redis key prefix (env RC_MIGRATE_PREFIX)')
    .action(async (flags: ConfigFlags & { runId: string }) => {
      const config = configFrom(flags);
      const { reportRun } = await import('./commands/report.js');
      const { summary, files, exitCode } = await reportRun({ config, runId: flags.runId, ...(flags.out ? { outDir: flags.out } : {}) });
      printSummary(summary, files.dir);
      process.exitCode = exitCode;
    });

  withConfigFlags(
    program
      .command('retry')
      .description("send a run's failed rows again (by default those that failed for transient reasons)")
      .requiredOption('--run-id <id>', 'run whose failed rows to retry')
      .option('--include-permanent', 'also rows that failed for good (after fixing data or project settings)')
      .option('--codes <list>', 'only rows with these RevenueCat codes or reasons, comma-separated: 7101,7229,timeout')
      .option('--no-wait', 'only queue them again, for workers running elsewhere')
      .option('--out <dir>', 'report directory (default reports/<run-id>)'),
  ).action(async (flags: ConfigFlags & { runId: string; includePermanent?: boolean; codes?: string; wait: boolean }) => {
    const config = configFrom(flags);
    const signal = stopOnSignals(() => undefined);
    const codes = flags.codes?.split(',').map((c) => c.trim()).filter((c) => c !== '');
    const { retryRun } = await import('./commands/retry.js');
    const result = await retryRun({
      config,
      logger: createLogger(config.logLevel),
      runId: flags.runId,
      includePermanent: flags.includePermanent === true,
      ...(codes ? { codes } : {}),
      wait: flags.wait,
      signal,
      ...(flags.out ? { outDir: flags.out } : {}),
    });
    process.stdout.write(`run ${flags.runId}: ${result.requeued} failed rows queued again\n`);
    if (result.summary && result.files) printSummary(result.summary, result.files.dir);
    process.exitCode = result.exitCode ?? EXIT.OK;
  });

  program
    .command('verify')
    .description("read each migrated user's current state and compare it with the import (API v2, no side effects)")
    .requiredOption('--run-id <id>', 'run to verify')
    .option('--v1', 'read through v1 GET /subscribers instead (it CREATES users that do not exist)')
    .option('--out <dir>', 'report directory (default reports/<run-id>)')
    .option('--redis <url>', 'Redis URL (env REDIS_URL)')
    .option('--prefix <prefix>', 'Redis key prefix (env RC_MIGRATE_PREFIX)')
    .option('--api-url <url>', 'RevenueCat API base URL (env REVENUECAT_API_URL)')
    .option('--log-level <level>', 'log level (env LOG_LEVEL)')
    .action(async (flags: ConfigFlags & { runId: string; v1?: boolean }) => {
      const config = configFrom(flags);
      const { verifyMigration } = await import('./commands/verify.js');
      const { result, summary, files, exitCode } = await verifyMigration({
        config,
        logger: createLogger(config.logLevel),
        runId: flags.runId,
        v1: flags.v1 === true,
        ...(flags.out ? { outDir: flags.out } : {}),
      });
      process.stdout.write(
        `verify ${flags.runId}: ${result.checked} rows of ${result.users} users checked, ${result.matched} as expected, ${result.checked - result.matched} not (mismatches.csv)${result.aborted ? `; STOPPED: ${result.aborted.message}` : ''}\n`,
      );
      printSummary(summary, files.dir);
      process.exitCode = result.aborted ? EXIT.FATAL : exitCode;
    });

  program
    .command('status')
    .description('counts so far, current rate, ETA and last errors of a run')
    .requiredOption('--run-id <id>', 'run to look at')
    .option('--json', 'print JSON')
    .option('--redis <url>', 'Redis URL (env REDIS_URL)')
    .option('--prefix <prefix>', 'Redis key prefix (env RC_MIGRATE_PREFIX)')
    .action(async (flags: ConfigFlags & { runId: string; json?: boolean }) => {
      const { runStatus } = await import('./commands/status.js');
      const status = await runStatus({ config: configFrom(flags), runId: flags.runId });
      process.stdout.write(flags.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(flags.runId, status));
      process.exitCode = status.status === 'complete' ? EXIT.OK : status.status === 'stopped' ? EXIT.FATAL : EXIT.INCOMPLETE;
    });

  withColumnFlags(
    program
      .command('schedule')
      .description('start runs on a schedule (nightly backfills); `rc-migrate work` carries them out')
      .argument('[source-template...]', 'sources, with {yyyy} {mm} {dd} {date} {HH} {MM} for the firing day')
      .option('--cron <pattern>', 'cron pattern, e.g. "0 3 * * *" (five fields, or six with seconds)')
      .option('--tz <zone>', 'time zone of the pattern and the date fields, e.g. Europe/Berlin (default UTC)')
      .option('--id <id>', 'schedule id; runs are named <id>-<yyyymmdd>-<HHMM>', 'nightly')
      .option('--days-ago <n>', 'date fields name the day this many days before the firing day', '0')
      .option('--list', 'list schedules')
      .option('--remove <id>', 'remove a schedule')
      .option('--redis <url>', 'Redis URL (env REDIS_URL)')
      .option('--prefix <prefix>', 'Redis key prefix (env RC_MIGRATE_PREFIX)'),
  ).action(async (templates: string[], flags: ConfigFlags & ColumnFlags & { cron?: string; tz?: string; id: string; daysAgo: string; list?: boolean; remove?: string }) => {
    const config = configFrom(flags);
    const { addSchedule, deleteSchedule, schedules } = await import('./commands/schedule.js');
    if (flags.list) {
      const all = await schedules(config);
      if (all.length === 0) process.stdout.write('no schedules\n');
      for (const s of all) process.stdout.write(`${s.id}\t${s.cron}${s.tz ? ` (${s.tz})` : ''}\tnext ${s.next ?? '-'}\t${s.sources.join(' ')}\n`);
      return;
    }
    if (flags.remove) {
      const removed = await deleteSchedule(config, flags.remove);
      if (!removed) throw new ConfigError(`no schedule "${flags.remove}": see rc-migrate schedule --list`);
      process.stdout.write(`removed schedule ${flags.remove}\n`);
      return;
    }
    if (!flags.cron) throw new ConfigError('schedule needs --cron "<pattern>" (or --list, or --remove ID)');
    const daysAgo = Number(flags.daysAgo);
    if (!Number.isInteger(daysAgo) || daysAgo < 0) throw new ConfigError(`--days-ago ${flags.daysAgo}: give a whole number of days, 0 or more`);
    const info = await addSchedule(config, {
      id: flags.id,
      cron: flags.cron,
      ...(flags.tz ? { tz: flags.tz } : {}),
      sources: templates,
      columns: columnsFrom(flags),
      force: flags.force === true,
      daysAgo,
    });
    process.stdout.write(`schedule ${info.id}: ${info.cron}${info.tz ? ` (${info.tz})` : ''}, next run ${info.next ?? 'unknown'}; start \`rc-migrate work\` to carry it out\n`);
  });

  program
    .command('serve')
    .description('serve /metrics (every queue and recent run), /healthz and a live queue dashboard at /dashboard')
    .option('--port <port>', 'port', '9464')
    .option('--host <host>', 'address to listen on (the dashboard can change jobs: keep it private)', '127.0.0.1')
    .option('--redis <url>', 'Redis URL (env REDIS_URL)')
    .option('--prefix <prefix>', 'Redis key prefix (env RC_MIGRATE_PREFIX)')
    .action(async (flags: ConfigFlags & { port: string; host: string }) => {
      const config = configFrom(flags);
      const { serveMonitor } = await import('./commands/serve.js');
      const server = await serveMonitor({ config, logger: createLogger(config.logLevel), port: Number(flags.port), host: flags.host });
      process.stdout.write(`metrics ${server.url}/metrics · health ${server.url}/healthz · dashboard ${server.url}/dashboard\n`);
      await new Promise<void>((resolve) => stopOnSignals(resolve));
      await server.close();
    });

  program
    .command('sandbox')
    .description('start the RevenueCat API sandbox (for rehearsals and tests)')
    .option('--port <port>', 'port (0 = any free one)', '4010')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--api-key <key>', 'accepted API key (repeatable; default appl_sandbox_key)', collect)
    .option('--rate-limit <perSecond>', 'requests per second before 429 (0 = none)')
    .option('--no-rate-limit-headers', 'do not announce the limit in RevenueCat-Rate-Limit-* headers')
    .option('--latency <ms>', 'added latency per request')
    .option('--latency-jitter <ms>', 'random extra latency up to this')
    .option('--fault-5xx <rate>', 'share of requests answered with a 5xx (0..1)')
    .option('--reset-rate <rate>', 'share of connections reset (0..1)')
    .option('--hang-rate <rate>', 'share of requests never answered (0..1)')
    .option('--seed <n>', 'seed of the fault generator')
    .action(async (flags: Record<string, string | string[] | boolean | undefined>) => {
      const { startSandbox, parseSandboxOptions } = await import('./sandbox/index.js');
      const options = parseSandboxOptions({
        port: flags.port,
        host: flags.host,
        apiKeys: flags.apiKey,
        rateLimitPerSecond: flags.rateLimit,
        rateLimitHeaders: flags.rateLimitHeaders,
        latencyMs: flags.latency,
        latencyJitterMs: flags.latencyJitter,
        fault5xxRate: flags.fault5xx,
        resetRate: flags.resetRate,
        hangRate: flags.hangRate,
        seed: flags.seed,
      });
      const sandbox = await startSandbox(options);
      process.stdout.write(`RevenueCat sandbox listening on ${sandbox.url} (stats: ${sandbox.url}/_sandbox/stats)\n`);
      await new Promise<void>((resolve) => stopOnSignals(resolve));
      await sandbox.close();
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with code 0.
      return err.exitCode === 0 ? EXIT.OK : EXIT.CONFIG;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`rc-migrate: ${err.message}\n`);
      return EXIT.CONFIG;
    }
    process.stderr.write(`rc-migrate: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.INTERNAL;
  }
}

const code = await main(process.argv);
process.exit(code);
