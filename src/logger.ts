// pino JSON logs on stderr (stdout is for the command's own answer). Redaction is a second line of defence:
// the code never passes keys or full tokens to the logger in the first place.
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

export function createLogger(level: string, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino({ level, base: { app: 'rc-migrate' }, redact: { paths: REDACT, censor: '[redacted]' } }, destination as pino.DestinationStream);
}

/** A logger that writes nothing, for library callers that do not want logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
