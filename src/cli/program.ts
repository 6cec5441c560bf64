// rc-migrate's commands: each maps its flags to one library function's options, calls it, prints the answer and
// sets the exit code the library gave. Building the program runs nothing (the bin, cli.ts, does).
//
// Each command loads its own modules when it runs: an `ingest` process then carries neither the HTTP client,
// the report renderer, the sandbox nor the dashboard, and stays small on a 50-million-row file.
import { Command } from 'commander';
import { join } from 'node:path';
import { ConfigError, newRunId } from '../config.js';
import { createLogger } from '../logger.js';
import { sandboxCommand } from '../sandbox/command.js';
import { stopOnSignals } from '../session/signals.js';
import { ingestDisplay, runDisplay } from './display.js';
import type { CliIo } from './io.js';
import { continueCommand } from './nextCommand.js';
import { columnsFrom, configFrom, numberFrom, withColumnFlags, withConfigFlags, withConflictFlag, type ColumnFlags, type ConflictFlag } from './options.js';
import { ingestText, planText, scheduleAddedText, scheduleListText, statusText, summaryText, verifyText } from './print.js';

type Flags = Record<string, unknown>;
const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } => (value === undefined ? {} : ({ [key]: value } as { [P in K]: V }));

/** `argv`: the command line being run (node, script, args…), which a canary's "how to continue" repeats. */
export function buildProgram(io: CliIo, argv: readonly string[] = []): Command {
  const program = new Command('rc-migrate')
    .description('Bulk receipt migration for RevenueCat: CSV → BullMQ → POST /v1/receipts → reports')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) });
  const print = (text: string): void => void io.stdout.write(text);
  /** Runs `fn` until it ends or the first SIGINT/SIGTERM asks it to stop; the display is cleared afterwards. */
  const stoppable = async <T>(display: { stop(): void }, fn: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const stop = stopOnSignals({ stream: io.stderr });
    try {
      return await fn(stop.signal);
    } finally {
      display.stop();
      stop.dispose();
    }
  };
  /** Serves until SIGINT/SIGTERM. */
  const untilStopped = async (): Promise<void> => {
    const stop = stopOnSignals({ stream: io.stderr });
    await stop.stopped;
    stop.dispose();
  };

  withConflictFlag(
    withColumnFlags(
      withConfigFlags(
        program
          .command('run')
          .description('ingest, send and report in one process; waits until every row has an outcome')
          .argument('<source...>', 'CSV files (.csv or .csv.gz) or s3://bucket/prefix URLs')
          .option('--run-id <id>', 'run id; give an existing one to continue it (default: a new id)')
          .option('--out <dir>', 'report directory (default reports/<run-id>)')
          .option('--limit <rows>', 'a canary: send this many rows (spread over the platforms), stop, and say how to send the rest')
          .option('--metrics-port <port>', "serve this process's metrics at /metrics on this port"),
      ),
    ),
  ).action(async (sources: string[], flags: Flags & ColumnFlags & ConflictFlag & { runId?: string; out?: string; limit?: string; metricsPort?: string }) => {
    const config = configFrom(flags);
    // The run id is known before the run starts, so that a terminal's log file can live in its report directory.
    const runId = flags.runId ?? newRunId();
    const display = runDisplay(io, config, { logDir: flags.out ?? join(config.reportDir, runId) });
    const { runMigration } = await import('../commands/run.js');
    const result = await stoppable(display, (signal) =>
      runMigration({
        config,
        logger: display.logger,
        sources,
        runId,
        columns: columnsFrom(flags),
        force: flags.force === true,
        signal,
        on: display.on,
        ...optional('onConflict', flags.onConflict),
        ...optional('limit', numberFrom(flags.limit)),
        ...optional('progressEveryMs', display.progressEveryMs),
        ...optional('metricsPort', numberFrom(flags.metricsPort)),
        ...optional('outDir', flags.out),
      }),
    );
    print(summaryText(result.summary, result.files.dir, continueCommand(argv.slice(2), result.runId)));
    io.stderr.write(display.closing());
    io.exitCode = result.exitCode;
  });

  withConflictFlag(
    withColumnFlags(
      withConfigFlags(
        program
          .command('ingest')
          .description('read sources and queue their rows for `rc-migrate work`')
          .argument('<source...>', 'CSV files (.csv or .csv.gz) or s3://bucket/prefix URLs')
          .requiredOption('--run-id <id>', 'run to add the rows to'),
      ),
    ),
  ).action(async (sources: string[], flags: Flags & ColumnFlags & ConflictFlag & { runId: string }) => {
    const config = configFrom(flags);
    const display = ingestDisplay(io, config);
    // This process only ingests: keep its heap near what it holds live (ingest/heapGrowth.ts).
    (await import('../ingest/heapGrowth.js')).limitHeapGrowthForIngest();
    const { ingestSources } = await import('../commands/ingest.js');
    const { result, exitCode } = await stoppable(display, (signal) =>
      ingestSources({
        config,
        logger: display.logger,
        sources,
        runId: flags.runId,
        columns: columnsFrom(flags),
        force: flags.force === true,
        signal,
        ...optional('onConflict', flags.onConflict),
        ...optional('onProgress', display.onProgress),
        ...optional('progressEveryMs', display.progressEveryMs),
      }),
    );
    print(ingestText(flags.runId, result));
    io.exitCode = exitCode;
  });

  withConflictFlag(
    withColumnFlags(
      withConfigFlags(
        program
          .command('plan')
          .description('read and validate the sources and send nothing: rows per platform, rejects, duplicates, conflicts, already migrated, ETA')
          .argument('<source...>', 'CSV files (.csv or .csv.gz) or s3://bucket/prefix URLs')
          .option('--out <dir>', 'where plan.json, rejected.csv and conflicts.csv go (default reports/<plan id>)'),
      ),
    ),
  ).action(async (sources: string[], flags: Flags & ColumnFlags & ConflictFlag & { out?: string }) => {
    const config = configFrom(flags);
    const { planMigration, newPlanId } = await import('../commands/plan.js');
    // The plan's directory is known before it starts, so that a terminal's log file can live in it.
    const planId = newPlanId();
    const outDir = flags.out ?? join(config.reportDir, planId);
    const display = ingestDisplay(io, config, { logFile: join(outDir, 'plan.log') });
    const { plan, files, exitCode } = await stoppable(display, (signal) =>
      planMigration({
        config,
        logger: display.logger,
        sources,
        planId,
        outDir,
        columns: columnsFrom(flags),
        force: flags.force === true,
        signal,
        ...optional('onConflict', flags.onConflict),
        ...optional('onProgress', display.onProgress),
      }),
    );
    print(planText(plan, files));
    io.stderr.write(display.closing());
    io.exitCode = exitCode;
  });

  withConfigFlags(
    program
      .command('work')
      .description('send queued rows (and carry out scheduled runs) until SIGTERM/SIGINT')
      .option('--metrics-port <port>', "serve this process's metrics at /metrics on this port"),
  ).action(async (flags: Flags & { metricsPort?: string }) => {
    const config = configFrom(flags);
    // Before the start, not after it: a supervisor's SIGTERM while the workers are still starting (a restart loop,
    // a deploy) is then a clean stop with exit 0, not a death by signal.
    const stop = stopOnSignals({ stream: io.stderr });
    const { startWorkers, workExitCode } = await import('../commands/work.js');
    const workers = await startWorkers({ config, logger: createLogger(config.logLevel, io.stderr), ...optional('metricsPort', numberFrom(flags.metricsPort)) }).catch(
      (err: unknown) => {
        stop.dispose();
        throw err;
      },
    );
    if (workers.metricsUrl) io.stderr.write(`metrics at ${workers.metricsUrl}/metrics\n`);
    const why = await Promise.race([stop.stopped.then(() => undefined), workers.fatal]);
    const { forced } = await workers.close();
    stop.dispose();
    if (why !== undefined) io.stderr.write(`stopped: ${why}\nfix the cause and start the workers again: queued rows are kept\n`);
    io.exitCode = workExitCode({ fatal: why !== undefined, forced });
  });

  withConfigFlags(
    program
      .command('report')
      .description("write a run's report from its outcomes (partial while the run is going)")
      .requiredOption('--run-id <id>', 'run to report')
      .option('--out <dir>', 'report directory (default reports/<run-id>)'),
  ).action(async (flags: Flags & { runId: string; out?: string }) => {
    const config = configFrom(flags);
    const { reportRun } = await import('../commands/report.js');
    const { summary, files, exitCode } = await reportRun({ config, runId: flags.runId, ...optional('outDir', flags.out) });
    print(summaryText(summary, files.dir));
    io.exitCode = exitCode;
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
  ).action(async (flags: Flags & { runId: string; includePermanent?: boolean; codes?: string; wait: boolean; out?: string }) => {
    const config = configFrom(flags);
    const display = runDisplay(io, config, { logDir: flags.out ?? join(config.reportDir, flags.runId) });
    const { retryRun } = await import('../commands/retry.js');
    const result = await stoppable(display, (signal) =>
      retryRun({
        config,
        logger: display.logger,
        runId: flags.runId,
        includePermanent: flags.includePermanent === true,
        wait: flags.wait,
        signal,
        on: display.on,
        ...optional('progressEveryMs', display.progressEveryMs),
        ...optional(
          'codes',
          flags.codes
            ?.split(',')
            .map((c) => c.trim())
            .filter((c) => c !== ''),
        ),
        ...optional('outDir', flags.out),
      }),
    );
    print(`run ${flags.runId}: ${result.requeued} failed rows queued again\n`);
    if (result.summary && result.files) print(summaryText(result.summary, result.files.dir));
    io.stderr.write(display.closing());
    io.exitCode = result.exitCode ?? io.exitCode;
  });

  withConfigFlags(
    program
      .command('verify')
      .description("read each migrated user's current state and compare it with the import (API v2, no side effects)")
      .requiredOption('--run-id <id>', 'run to verify')
      .option('--v1', 'read through v1 GET /subscribers instead (it CREATES users that do not exist)')
      .option('--out <dir>', 'report directory (default reports/<run-id>)'),
  ).action(async (flags: Flags & { runId: string; v1?: boolean; out?: string }) => {
    const config = configFrom(flags);
    const { verifyMigration } = await import('../commands/verify.js');
    const { result, summary, files, exitCode } = await verifyMigration({
      config,
      logger: createLogger(config.logLevel, io.stderr),
      runId: flags.runId,
      v1: flags.v1 === true,
      ...optional('outDir', flags.out),
    });
    print(verifyText(flags.runId, result));
    print(summaryText(summary, files.dir));
    io.exitCode = exitCode;
  });

  withConfigFlags(
    program
      .command('status')
      .description('counts so far, current rate, ETA and last errors of a run')
      .requiredOption('--run-id <id>', 'run to look at')
      .option('--json', 'print JSON'),
  ).action(async (flags: Flags & { runId: string; json?: boolean }) => {
    const { runStatus, statusExitCode } = await import('../commands/status.js');
    const status = await runStatus({ config: configFrom(flags), runId: flags.runId });
    print(flags.json ? `${JSON.stringify(status, null, 2)}\n` : statusText(flags.runId, status));
    io.exitCode = statusExitCode(status);
  });

  withColumnFlags(
    withConfigFlags(
      program
        .command('schedule')
        .description('start runs on a schedule (nightly backfills); `rc-migrate work` carries them out')
        .argument('[source-template...]', 'sources, with {yyyy} {mm} {dd} {date} {HH} {MM} for the firing day')
        .option('--cron <pattern>', 'cron pattern, e.g. "0 3 * * *" (five fields, or six with seconds)')
        .option('--tz <zone>', 'time zone of the pattern and the date fields, e.g. Europe/Berlin (default UTC)')
        .option('--id <id>', 'schedule id; runs are named <id>-<yyyymmdd>-<HHMM>', 'nightly')
        .option('--days-ago <n>', 'date fields name the day this many days before the firing day', '0')
        .option('--list', 'list schedules')
        .option('--remove <id>', 'remove a schedule'),
    ),
  ).action(async (templates: string[], flags: Flags & ColumnFlags & { cron?: string; tz?: string; id: string; daysAgo: string; list?: boolean; remove?: string }) => {
    const config = configFrom(flags);
    const { addSchedule, deleteSchedule, schedules } = await import('../commands/schedule.js');
    if (flags.list) {
      print(scheduleListText(await schedules(config)));
      return;
    }
    if (flags.remove) {
      if (!(await deleteSchedule(config, flags.remove))) throw new ConfigError(`no schedule "${flags.remove}": see rc-migrate schedule --list`);
      print(`removed schedule ${flags.remove}\n`);
      return;
    }
    if (!flags.cron) throw new ConfigError('schedule needs --cron "<pattern>" (or --list, or --remove ID)');
    const info = await addSchedule(config, {
      id: flags.id,
      cron: flags.cron,
      sources: templates,
      columns: columnsFrom(flags),
      force: flags.force === true,
      daysAgo: Number(flags.daysAgo),
      ...optional('tz', flags.tz),
    });
    print(scheduleAddedText(info));
  });

  withConfigFlags(
    program
      .command('serve')
      .description('serve /metrics (every queue and recent run), /healthz and a live queue dashboard at /dashboard')
      .option('--port <port>', 'port', '9464')
      .option('--host <host>', 'address to listen on (the dashboard can change jobs: keep it private)', '127.0.0.1'),
  ).action(async (flags: Flags & { port: string; host: string }) => {
    const config = configFrom(flags);
    const { serveMonitor } = await import('../commands/serve.js');
    const server = await serveMonitor({ config, logger: createLogger(config.logLevel, io.stderr), port: Number(flags.port), host: flags.host });
    print(`metrics ${server.url}/metrics · health ${server.url}/healthz · dashboard ${server.url}/dashboard\n`);
    await untilStopped();
    await server.close();
  });

  program.addCommand(sandboxCommand({ out: print, untilStopped: async () => untilStopped() }));

  return program;
}
