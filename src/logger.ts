// pino JSON logs on stderr (stdout is for the command's own answer), or at a terminal to a log file with the
// warnings also on the screen (cli/display.ts). Redaction is a second line of defence: the code never passes keys
// or full tokens to the logger in the first place.
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'apiKey',
  'secretKey',
  '*.secretKey',
  'authorization',
  'headers.authorization',
  'fetch_token',
  'body.fetch_token',
  'data.body.fetch_token',
  'input',
  '*.apiKey',
  '*.fetch_token',
];

const OPTIONS = { base: { app: 'rc-migrate' }, redact: { paths: REDACT, censor: '[redacted]' } };

export function createLogger(level: string, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino({ level, ...OPTIONS }, destination as pino.DestinationStream);
}

/** A log file, appended to, its directory made if need be; written synchronously, so nothing is lost at exit. */
export function fileDestination(path: string): ReturnType<typeof pino.destination> {
  return pino.destination({ dest: path, append: true, mkdir: true, sync: true });
}

/**
 * Every line at `level` to `file`, and lines at warn and above (or `level`, if higher) also to `screen`: the same
 * JSON lines, which the screen formats as it likes.
 */
export function createTeeLogger(level: string, file: pino.DestinationStream, screen: { write(line: string): void }): Logger {
  if (level === 'silent') return pino({ level, ...OPTIONS });
  const screenLevel = (pino.levels.values[level] ?? 0) > (pino.levels.values.warn ?? 40) ? (level as pino.Level) : 'warn';
  return pino(
    { level, ...OPTIONS },
    pino.multistream([
      { level: level as pino.Level, stream: file },
      { level: screenLevel, stream: screen },
    ]),
  );
}

/** A logger that writes nothing, for library callers that do not want logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
