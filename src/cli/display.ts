// How a command shows its progress. Away from a terminal (CI, a container, a pipe): nothing but the JSON log
// lines on stderr, a progress line every few seconds among them. At a terminal: a progress bar, and the screen
// stays readable: every log line goes to a log file in the run's report directory (JSON lines, `run.log`; a
// plan's in its directory), and only warnings and errors that are not about one row show, made human-readable
// (pino-pretty), above the bar.
// Per-row lines (a row that failed, was retried, did not reconcile) are counted and left to the log file and
// the report, whose CSVs list every row anyway. The logger is made here, so the commands never know.
import { join } from 'node:path';
import pinoPretty from 'pino-pretty';
import type { Config } from '../config.js';
import type { IngestProgress } from '../ingest/ingester.js';
import { createLogger, createTeeLogger, fileDestination, type Logger } from '../logger.js';
import { ingestProgressLine, runProgressBar } from '../progress.js';
import type { SessionListeners } from '../session/runSession.js';
import type { CliIo } from './io.js';

export interface RunDisplay {
  logger: Logger;
  /** the session's progress log interval: 0 when a bar shows progress, else the library's default */
  progressEveryMs?: number;
  on: SessionListeners;
  /** stops the bar (the log lines it holds are written first); the log file is written synchronously, so it is complete */
  stop(): void;
  /** what to say once the summary is printed: where the log file is (empty away from a terminal) */
  closing(): string;
}

/** `logDir`: where a terminal's log file goes (the run's report directory); without it, logs stay on stderr. */
export function runDisplay(io: CliIo, config: Config, opts: { logDir?: string } = {}): RunDisplay {
  const metrics = ({ url }: { url: string }): void => void io.stderr.write(`metrics at ${url}/metrics\n`);
  if (!io.stderr.isTTY || opts.logDir === undefined) {
    return { logger: createLogger(config.logLevel, io.stderr), on: { metrics }, stop: () => undefined, closing: () => '' };
  }
  const bar = runProgressBar(io.stderr, { headroom: config.rateHeadroom });
  const { logger, screen, path } = terminalLogger(config, join(opts.logDir, 'run.log'), bar);
  return {
    logger,
    progressEveryMs: 0,
    on: {
      metrics,
      progress: (s) => bar.onState(s),
      // the bar's last word is the report's counts, not the last second's
      finished: ({ summary }) => {
        bar.onState(summary);
        bar.stop();
      },
    },
    stop: () => bar.stop(),
    closing: () => closingLine(path, screen),
  };
}

/** At a terminal: every line to the log file at `path`, the screen's share through `screen.log`. */
function terminalLogger(config: Config, path: string, above: { log(text: string): void }): { logger: Logger; screen: ScreenLog; path: string } {
  const screen = new ScreenLog(above);
  return { logger: createTeeLogger(config.logLevel, fileDestination(path), screen), screen, path };
}

function closingLine(path: string, screen: ScreenLog): string {
  return `log: ${path}${screen.rowLines > 0 ? ` (${screen.rowLines} warnings about single rows are there, and their rows in the report)` : ''}\n`;
}

/**
 * The screen's share of the log: JSON lines at warn and above (pino's multistream sends nothing else), shown
 * pretty above the bar, except a row's own lines below error (they name a `src` and a `line`).
 */
class ScreenLog {
  rowLines = 0;
  private readonly pretty = pinoPretty.prettyFactory({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,app', singleLine: true });

  constructor(private readonly bar: { log(text: string): void }) {}

  write(line: string): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.bar.log(line.trimEnd());
      return;
    }
    if (typeof record.line === 'number' && 'src' in record && Number(record.level) < 50) {
      this.rowLines++;
      return;
    }
    this.bar.log(this.pretty(record).trimEnd());
  }
}

export interface IngestDisplay {
  logger: Logger;
  progressEveryMs?: number;
  onProgress?: (p: IngestProgress) => void;
  stop(): void;
  /** what to say at the end: where the log file is (empty without one) */
  closing(): string;
}

/** `logFile`: at a terminal, where the log goes (a plan's directory); without it, logs stay on stderr. */
export function ingestDisplay(io: CliIo, config: Config, opts: { logFile?: string } = {}): IngestDisplay {
  if (!io.stderr.isTTY) return { logger: createLogger(config.logLevel, io.stderr), stop: () => undefined, closing: () => '' };
  const line = ingestProgressLine(io.stderr);
  if (opts.logFile === undefined) {
    return { logger: createLogger(config.logLevel, io.stderr), progressEveryMs: 0, onProgress: (p) => line.onProgress(p), stop: () => line.stop(), closing: () => '' };
  }
  const { logger, screen, path } = terminalLogger(config, opts.logFile, line);
  return { logger, progressEveryMs: 0, onProgress: (p) => line.onProgress(p), stop: () => line.stop(), closing: () => closingLine(path, screen) };
}
