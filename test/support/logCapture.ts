// A real pino logger (src/logger.ts) whose JSON lines a test keeps and reads back: what a run printed, at which
// level, with which fields.
import { createLogger, type Logger } from '../../src/logger.js';

export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** One line as pino wrote it: its level, message and whatever fields came with it. */
export interface LogLine {
  level: number;
  msg: string;
  err?: { message?: string; stack?: string };
  [field: string]: unknown;
}

export interface LogCapture {
  logger: Logger;
  /** every line so far, oldest first */
  lines: LogLine[];
  /** the lines whose message matches */
  matching(msg: RegExp): LogLine[];
}

/** A logger at `level` (default debug) that keeps every line it writes. */
export function captureLog(level: keyof typeof LEVEL | 'silent' = 'debug'): LogCapture {
  const lines: LogLine[] = [];
  const sink = {
    write(chunk: string | Buffer): boolean {
      for (const text of chunk.toString().split('\n')) if (text.trim() !== '') lines.push(JSON.parse(text) as LogLine);
      return true;
    },
  };
  return {
    logger: createLogger(level, sink as unknown as NodeJS.WritableStream),
    lines,
    matching: (msg) => lines.filter((l) => msg.test(l.msg)),
  };
}
