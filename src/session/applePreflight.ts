// `run` with rows given by an Apple transaction id needs the App Store Connect API key: without it, it refuses at
// the start and names the variables (rather than failing those rows one by one once they reach a worker). Only
// sources whose header has a transaction_id column (or a --map to it) are read, and only up to the first row
// that would be looked up; a file without one costs one header read. S3 sources are not read ahead.
import { appleCredentialsOf, missingCredentialsMessage } from '../appstore/serverApiCredentials.js';
import { ConfigError, type Config } from '../config.js';
import { planColumns, type ColumnOptions } from '../ingest/columns.js';
import { stat } from 'node:fs/promises';
import { expandSource, isS3Url, type SourceDeps } from '../ingest/sources.js';
import { validateRow } from '../ingest/validateRow.js';

/** The first place (source and line) of a row that needs a lookup, or undefined when none does. */
export async function firstLookupRow(sources: readonly string[], columns: ColumnOptions, deps: SourceDeps, config: Pick<Config, 'inputEncoding'>): Promise<string | undefined> {
  // S3 sources are not read ahead (their rows would fail as no_apple_credentials in the workers).
  for (const given of sources.filter((s) => !isS3Url(s))) {
    try {
      // Only regular files are read ahead: reading a pipe would consume it (or wait for ever on one nothing writes
      // to); the session refuses it with its own message (sources.ts checkSources).
      if (!(await stat(given)).isFile()) continue;
      for await (const entry of expandSource(given, deps, { encoding: config.inputEncoding })) {
        for await (const item of entry.open()) {
          if (item.kind !== 'record') continue;
          const planned = planColumns(item.columns, columns);
          // A file without the column (or that cannot be used at all) has no row to look up.
          if ('error' in planned || planned.plan.transactionId === undefined) break;
          const row = validateRow(item.values, planned.plan, columns.platform ? { platform: columns.platform } : {});
          if (row.ok && row.lookup) return `${entry.name} line ${item.line}`;
        }
      }
    } catch {
      // A source that cannot be read is the session's to report (with its own message and exit code).
    }
  }
  return undefined;
}

/** Refuses (ConfigError) when a row needs a lookup and the key is missing. */
export async function requireAppleCredentialsFor(config: Config, sources: readonly string[], columns: ColumnOptions, deps: SourceDeps = {}): Promise<void> {
  const found = appleCredentialsOf(config);
  if (found.ok) return;
  const first = await firstLookupRow(sources, columns, deps, config);
  if (first !== undefined) throw new ConfigError(`${missingCredentialsMessage(found.missing)} (the first such row: ${first})`);
}
