// scripts/demo.mjs end to end: the real CLI (dist/, built before vitest runs) on examples/ against the sandbox.
// Each test gives the demo its own key prefix and removes its report directory and keys afterwards.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, rmdirSync, symlinkSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { dropPrefix, uniquePrefix } from './support/redis.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DEMO = join(ROOT, 'scripts', 'demo.mjs');
const REPORTS = join(ROOT, 'reports');

interface DemoResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runDemo(env: Record<string, string>, timeoutMs = 80_000): Promise<DemoResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEMO], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port nobody listens on: bound, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface Summary {
  status: string;
  rows_read: number;
  rows_succeeded: number;
  rows_failed: number;
  rows_rejected: number;
  rows_duplicate: number;
  rows_conflict: number;
  rows_held: number;
  rows_pending: number;
}

function runIdOf(result: DemoResult): string {
  const m = /^run id: (demo-[A-Za-z0-9_.-]+)$/m.exec(result.stdout);
  if (!m?.[1]) throw new Error(`no run id in the demo's output:\n${result.stdout}\n${result.stderr}`);
  return m[1];
}

function readSummary(runId: string): Summary {
  const path = join(REPORTS, runId, 'summary.json');
  expect(existsSync(path), `${path} exists`).toBe(true);
  return JSON.parse(readFileSync(path, 'utf8')) as Summary;
}

/** The rows of examples/transaction-ids.csv: given by an Apple transaction id only, looked up, then imported. */
const TRANSACTION_ID_ROWS =
  readFileSync(join(ROOT, 'examples', 'transaction-ids.csv'), 'utf8')
    .trim()
    .split('\n').length - 1;

function expectSampleOutcome(summary: Summary): void {
  expect(TRANSACTION_ID_ROWS).toBe(3);
  expect(summary.status).toBe('complete');
  expect(summary.rows_read).toBe(29 + TRANSACTION_ID_ROWS);
  expect(summary.rows_succeeded).toBeGreaterThan(0);
  expect(summary.rows_rejected).toBe(8);
  expect(summary.rows_duplicate).toBe(1);
  // user-0025 holds user-0002's receipt: a conflict, held
  expect(summary.rows_conflict).toBe(1);
  expect(summary.rows_held).toBe(1);
  expect(summary.rows_pending).toBe(0);
  expect(summary.rows_succeeded + summary.rows_failed + summary.rows_rejected + summary.rows_duplicate + summary.rows_held).toBe(29 + TRANSACTION_ID_ROWS);
}

/** The transaction-id rows succeeded: each in succeeded.csv, none failed. */
function expectTransactionIdsImported(runId: string): void {
  const rowsOf = (file: string): string[] =>
    readFileSync(join(REPORTS, runId, file), 'utf8')
      .trim()
      .split('\n')
      .slice(1);
  const succeeded = rowsOf('succeeded.csv').filter((l) => l.startsWith('examples/transaction-ids.csv,'));
  expect(succeeded.map((l) => Number(l.split(',')[1])).sort()).toEqual(Array.from({ length: TRANSACTION_ID_ROWS }, (_, i) => i + 2));
  expect(rowsOf('failed.csv').filter((l) => l.includes('transaction-ids.csv'))).toEqual([]);
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

const reportsExisted = existsSync(REPORTS);
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  if (!reportsExisted) {
    try {
      rmdirSync(REPORTS); // only if empty: another test may be writing there
    } catch {
      // not empty or not there
    }
  }
});

function cleanUpAfter(prefix: string | undefined, result: DemoResult): void {
  const m = /^run id: (demo-[A-Za-z0-9_.-]+)$/m.exec(result.stdout);
  if (m?.[1]) {
    const dir = join(REPORTS, m[1]);
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  }
  if (prefix) cleanups.push(() => dropPrefix(prefix));
}

describe('scripts/demo.mjs', () => {
  it("runs the sample data against the sandbox and exits with the run's code 1", async () => {
    const prefix = uniquePrefix('demo');
    const result = await runDemo({ REDIS_URL: inject('redisUrl'), RC_MIGRATE_DEMO_PREFIX: prefix });
    cleanUpAfter(prefix, result);

    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(1);
    expectSampleOutcome(readSummary(runIdOf(result)));
    expectTransactionIdsImported(runIdOf(result));
    expect(result.stdout).toContain('node dist/cli.js run examples/receipts.csv examples/google-play-export.csv examples/transaction-ids.csv --platform android --rate 20');
    // The lookups used the key the sandbox generated, named by the variables a team sets for its own.
    expect(result.stdout).toMatch(/APP_STORE_SERVER_API_URL=http:\/\/127\.0\.0\.1:\d+ APPLE_KEY_ID=\S+ APPLE_ISSUER_ID=\S+ APPLE_PRIVATE_KEY_FILE=\S+\.p8/);
    expect(result.stdout).toContain(`transaction ids: ${TRANSACTION_ID_ROWS} of ${TRANSACTION_ID_ROWS} looked up and imported`);
    expect(result.stdout).toMatch(new RegExp(`apple lookups\\s+${TRANSACTION_ID_ROWS}\\b`));
    // The sandbox's .p8 was the demo's to remove.
    const keyFile = /APPLE_PRIVATE_KEY_FILE=(\S+\.p8)/.exec(result.stdout)?.[1];
    expect(keyFile && existsSync(keyFile)).toBe(false);
    expect(result.stdout).toContain(`RC_MIGRATE_PREFIX=${prefix}`);
    expect(result.stdout).toMatch(/exit code 1 \("some rows failed or were rejected"\) is the expected result/);
    expect(result.stdout).toMatch(/failed\.csv: \d+ rows?/);
    expect(result.stdout).toMatch(/rejected\.csv: 8 rows/);
    expect(result.stdout).toMatch(/conflicts\.csv: 1 row\n\s+receipts\.csv:26\s+user-0025\s+held: token MIIT…\S+ is user-0002's \(line 3\)/);
    // The plan came first, sent nothing, and said the same.
    expect(result.stdout).toContain('node dist/cli.js plan examples/receipts.csv examples/google-play-export.csv examples/transaction-ids.csv --platform android');
    expect(result.stdout).toMatch(new RegExp(`plan: nothing was sent\\n\\s+rows read\\s+${29 + TRANSACTION_ID_ROWS}\\n\\s+to send\\s+${19 + TRANSACTION_ID_ROWS}\\b`));
    expect(result.stdout).toMatch(/Apple lookups\s+3 transaction ids to look up\n/);
    expect(result.stdout).toMatch(/conflicts\s+1, 1 would be held/);
    expect(result.stdout).toMatch(/overlaps\s+0\b/);
    expect(result.stdout).toMatch(/flagsNotFalse\s+0\b/);

    // The sandbox is gone once the demo has exited.
    const sandboxUrl = /^sandbox: (http:\/\/\S+)$/m.exec(result.stdout)?.[1];
    expect(sandboxUrl).toBeDefined();
    expect(portOf(sandboxUrl!)).toBeGreaterThan(0);
    expect(await portOpen(portOf(sandboxUrl!))).toBe(false);
  }, 90_000);

  it('exits 2 and says how to get Redis when none answers and redis-server is not on PATH', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'rcm-demo-path-'));
    cleanups.push(() => rmSync(bin, { recursive: true, force: true }));
    symlinkSync(process.execPath, join(bin, 'node'));
    const port = await closedPort();

    const result = await runDemo({ REDIS_URL: `redis://127.0.0.1:${port}`, PATH: bin, RC_MIGRATE_DEMO_PREFIX: uniquePrefix('demo') });
    cleanUpAfter(undefined, result);

    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(2);
    const said = result.stdout + result.stderr;
    expect(said).toContain(`No Redis answers at redis://127.0.0.1:${port}`);
    expect(said).toContain('sudo apt-get install redis-server');
    expect(said).toContain('brew install redis');
    expect(said).toMatch(/docker (compose up -d redis|run .*redis)/);
    expect(result.stdout).not.toMatch(/^run id:/m);
  }, 30_000);

  // .ci/run installs redis-server, so this never skips itself: without it the test fails.
  it('starts a private redis-server when none answers, and stops it at the end', async () => {
    const port = await closedPort();
    const result = await runDemo({ REDIS_URL: `redis://127.0.0.1:${port}`, RC_MIGRATE_DEMO_PREFIX: uniquePrefix('demo') });
    cleanUpAfter(undefined, result); // the private Redis and its keys are gone with it

    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(1);
    const privateUrl = /^private Redis: (redis:\/\/\S+)$/m.exec(result.stdout)?.[1];
    expect(privateUrl, result.stdout).toBeDefined();
    expect(portOf(privateUrl!)).not.toBe(port);
    expect(result.stdout).toContain(`REDIS_URL=${privateUrl}`);
    expectSampleOutcome(readSummary(runIdOf(result)));
    expectTransactionIdsImported(runIdOf(result));
    expect(result.stdout).toContain(`stopped the private Redis (${privateUrl})`);
    expect(await portOpen(portOf(privateUrl!))).toBe(false);
  }, 90_000);
});
