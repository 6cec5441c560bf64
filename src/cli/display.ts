// How a command shows its progress: at a terminal a progress bar (the session's periodic progress log lines
// are then off), elsewhere (CI, a container) nothing but the JSON log lines. The logger is made here too, so a
// terminal mode can route per-row lines elsewhere without touching the commands.
import type { Config } from '../config.js';
import type { IngestProgress } from '../ingest/ingester.js';
import { createLogger, type Logger } from '../logger.js';
import { ingestProgressLine, runProgressBar } from '../progress.js';
import type { SessionListeners } from '../session/runSession.js';
import type { CliIo } from './io.js';

export interface RunDisplay {
  logger: Logger;
  /** the session's progress log interval: 0 when a bar shows progress, else the library's default */
  progressEveryMs?: number;
  on: SessionListeners;
  stop(): void;
}

export function runDisplay(io: CliIo, config: Config): RunDisplay {
  const logger = createLogger(config.logLevel, io.stderr);
  const metrics = ({ url }: { url: string }): void => void io.stderr.write(`metrics at ${url}/metrics\n`);
  if (!io.stderr.isTTY) return { logger, on: { metrics }, stop: () => undefined };
  const bar = runProgressBar(io.stderr);
  return { logger, progressEveryMs: 0, on: { metrics, progress: (s) => bar.onState(s), finished: () => bar.stop() }, stop: () => bar.stop() };
}

export interface IngestDisplay {
  logger: Logger;
  progressEveryMs?: number;
  onProgress?: (p: IngestProgress) => void;
  stop(): void;
}

export function ingestDisplay(io: CliIo, config: Config): IngestDisplay {
  const logger = createLogger(config.logLevel, io.stderr);
  if (!io.stderr.isTTY) return { logger, stop: () => undefined };
  const line = ingestProgressLine(io.stderr);
  return { logger, progressEveryMs: 0, onProgress: (p) => line.onProgress(p), stop: () => line.stop() };
}
