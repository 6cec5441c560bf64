// Building blocks of the pipeline tests: a config pointed at a test's own prefix and sandbox, CSV writing,
// and reading report files back.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { loadConfig, type Config } from '../../src/config.js';
import { redisUrl } from './redis.js';

export const SANDBOX_KEY = 'appl_sandbox_key';

export function testConfig(prefix: string, apiUrl: string, overrides: Partial<Record<keyof Config, unknown>> = {}): Config {
  return loadConfig({
    env: {},
    overrides: {
      redisUrl: redisUrl(),
      prefix,
      apiUrl,
      apiKey: SANDBOX_KEY,
      ratePerSecond: 1000,
      concurrency: 16,
      maxAttempts: 8,
      backoffBaseMs: 20,
      backoffMaxMs: 200,
      rateLimitDefaultWaitMs: 200,
      userBusyDelayMs: 20,
      requestTimeoutMs: 3000,
      shutdownTimeoutMs: 10000,
      logLevel: 'silent',
      ...overrides,
    },
  });
}

export async function tempDir(name: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `rcm-${name}-`));
}

function csvCell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Writes rows as a CSV with the given header; returns the path. Row i is on line i + 2. */
export async function writeCsv(dir: string, name: string, header: string[], rows: string[][]): Promise<string> {
  const path = join(dir, name);
  const text = [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n');
  await writeFile(path, `${text}\n`);
  return path;
}

export async function readCsvFile(path: string): Promise<Record<string, string>[]> {
  return parse<Record<string, string>>(await readFile(path), { columns: true, skip_empty_lines: true });
}

/** A token that looks like a Google purchase token and carries a sandbox directive when given one. */
export function token(i: number, directive = ''): string {
  const body = `tok${String(i).padStart(7, '0')}abcdefghijklmnopqrstuvwxyz0123456789`;
  return directive ? `${body}-sbx-${directive}` : body;
}
