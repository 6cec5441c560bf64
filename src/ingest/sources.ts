// Where rows come from. A source is a name the user typed; this is the one place that turns it into a stream.
import { access } from 'node:fs/promises';
import { ConfigError } from '../config.js';
import { readCsvFile, type CsvItem } from './readCsv.js';

export function openSource(source: string): AsyncIterable<CsvItem> {
  return readCsvFile(source);
}

/** Checked before a run starts, so a typo stops the run with a message instead of a half-done ingest. */
export async function checkSources(sources: string[]): Promise<void> {
  if (sources.length === 0) throw new ConfigError('no source given: name one or more CSV files (.csv or .csv.gz)');
  for (const source of sources) {
    try {
      await access(source);
    } catch {
      throw new ConfigError(`source not found: ${source} (give the path of a CSV or CSV.gz file)`);
    }
  }
}
