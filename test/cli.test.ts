// The CLI as a user runs it: a separate Node process, configuration from the environment, exit codes.
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../src/cli/main.js';
import { buildProgram } from '../src/cli/program.js';
import type { CliIo } from '../src/cli/io.js';
import { ingestSources } from '../src/commands/ingest.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { openReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { openRedis } from '../src/redis/connection.js';
import { silentLogger } from '../src/logger.js';
import { redisUrl } from './support/redis.js';
import { SANDBOX_KEY, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { until } from './support/until.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string>, onSpawn?: (pid: number) => void): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (child.pid) onSpawn?.(child.pid);
  });
}

describe('rc-migrate CLI', () => {
  const fx = pipelineFixture('cli');
  let good: string;
  let mixed: string;
  let env: Record<string, string>;
  /** A named pipe, as `<(zcat exports.csv.gz)` gives one (made once; nothing ever writes to it). */
  const fifo = (): string => {
    const path = join(fx.dir, 'exports.fifo');
    if (!existsSync(path)) execFileSync('mkfifo', [path]);
    return path;
  };

  beforeAll(async () => {
    good = await writeCsv(
      fx.dir,
      'good.csv',
      ['app_user_id', 'receipt'],
      [
        ['alice', token(1)],
        ['bob', token(2)],
      ],
    );
    mixed = await writeCsv(
      fx.dir,
      'mixed.csv',
      ['app_user_id', 'receipt'],
      [
        ['carol', token(3)],
        ['null', token(4)],
        ['dave', token(5, 'invalid')],
      ],
    );
    env = {
      REDIS_URL: redisUrl(),
      RC_MIGRATE_PREFIX: fx.prefix,
      REVENUECAT_API_URL: fx.sandbox.url,
      REVENUECAT_API_KEY: SANDBOX_KEY,
      LOG_LEVEL: 'debug',
      RC_MIGRATE_REPORT_DIR: join(fx.dir, 'reports'),
    };
  });

  it('exits 0 when every row succeeded, and keeps the key and tokens out of its output', async () => {
    const r = await cli(['run', good, '--platform', 'ios', '--run-id', 'cli-good'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/succeeded\s+2/);
    expect(r.stdout).toContain(join(fx.dir, 'reports', 'cli-good'));
    const output = r.stdout + r.stderr;
    expect(output).not.toContain(SANDBOX_KEY);
    expect(output).not.toContain(token(1));
    expect(r.stderr).toContain('"level":20'); // debug logs were on, so the check above saw them
  });

  it('exits 1 when rows failed or were rejected', async () => {
    const r = await cli(['run', mixed, '--platform', 'ios', '--run-id', 'cli-mixed'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/succeeded\s+1/);
    expect(r.stdout).toMatch(/failed\s+1/);
    expect(r.stdout).toMatch(/rejected\s+1/);
  });

  it.each([
    ['no API key', ['run', 'x.csv'], { REVENUECAT_API_KEY: '' }, /REVENUECAT_API_KEY is not set/],
    ['Redis not reachable', ['run', 'GOOD'], { REDIS_URL: 'redis://127.0.0.1:1' }, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/],
    ['missing source file', ['run', '/nonexistent/receipts.csv'], {}, /source not found: \/nonexistent\/receipts.csv/],
    ['a directory as source', ['run', 'DIR'], {}, /source .* is a directory: name the CSV files in it/],
    ['a pipe as source (process substitution)', ['run', 'FIFO'], {}, /is not a regular file \(a pipe or a process substitution can be read only once/],
    ['unknown flag', ['run', 'GOOD', '--frobnicate'], {}, /unknown option/],
    ['bad number in the environment', ['run', 'GOOD'], { RC_MIGRATE_RATE: 'fast' }, /ratePerSecond \(from environment variable RC_MIGRATE_RATE\)/],
    ['bad API URL', ['run', 'GOOD'], { REVENUECAT_API_URL: 'api.revenuecat.com' }, /apiUrl .*http\(s\) URL/],
    ['bad --map', ['run', 'GOOD', '--map', 'receipt=receipt_data'], {}, /not a POST \/v1\/receipts field/],
    ['bad run id', ['run', 'GOOD', '--run-id', 'a:b'], {}, /run id "a:b" is not valid/],
    ['report of an unknown run', ['report', '--run-id', 'no-such-run'], {}, /no run "no-such-run"/],
    [
      'unknown --encoding',
      ['run', 'GOOD', '--encoding', 'ebcdic'],
      {},
      /--encoding <encoding>' argument 'ebcdic' is invalid. Allowed choices are utf8, latin1, windows-1252, utf16le/,
    ],
    ['--limit that is not a count', ['run', 'GOOD', '--limit', '0'], {}, /--limit 0: give the number of rows the canary sends/],
    ['unknown --on-conflict', ['run', 'GOOD', '--on-conflict', 'transfer'], {}, /argument 'transfer' is invalid. Allowed choices are hold, send/],
  ])('exits 2 with a message for a configuration error: %s', async (_name, args, extra, message) => {
    const r = await cli(
      args.map((a) => (a === 'GOOD' ? good : a === 'DIR' ? fx.dir : a === 'FIFO' ? fifo() : a)),
      { ...env, ...extra },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('--encoding latin1 reads a file saved as Latin-1 (the flag sets inputEncoding)', async () => {
    const source = join(fx.dir, 'latin1.csv');
    await writeFile(source, Buffer.from(`app_user_id,receipt,$displayName\nenc-zoe,${token(30)},Zo\u00eb\n`, 'latin1'));
    const r = await cli(['run', source, '--platform', 'ios', '--run-id', 'cli-latin1', '--encoding', 'latin1'], env);
    expect(r.code, r.stderr).toBe(0);
    fx.sandbox.configure({ apiKeys: [SANDBOX_KEY, 'sk_cli_reader'] });
    try {
      const res = await fetch(`${fx.sandbox.url}/v1/subscribers/enc-zoe`, { headers: { authorization: 'Bearer sk_cli_reader' } });
      const body = (await res.json()) as { subscriber: { subscriber_attributes?: Record<string, { value: string }> } };
      expect(body.subscriber.subscriber_attributes?.$displayName?.value).toBe('Zo\u00eb');
    } finally {
      fx.sandbox.configure({ apiKeys: [SANDBOX_KEY] });
    }
  });

  it('plan: no API key needed, nothing sent, exit 1 when rows are rejected and 0 when none are', async () => {
    const { REVENUECAT_API_KEY: _key, ...keyless } = env;
    const requests = fx.sandbox.stats().requests;
    const bad = await cli(['plan', mixed, '--platform', 'ios', '--out', join(fx.dir, 'plan-mixed')], keyless);
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stdout).toMatch(/^plan: nothing was sent$/m);
    expect(bad.stdout).toMatch(/rejected\s+1/);
    expect(existsSync(join(fx.dir, 'plan-mixed', 'plan.json'))).toBe(true);
    const ok = await cli(['plan', good, '--platform', 'ios', '--out', join(fx.dir, 'plan-good'), '--encoding', 'utf8'], keyless);
    expect(ok.code, ok.stderr).toBe(0);
    expect(fx.sandbox.stats().requests).toBe(requests);
  });

  it('accepts the --map forms the library accepts: a $attribute target and a field name in any case', async () => {
    const source = await writeCsv(
      fx.dir,
      'mapped.csv',
      ['user', 'Receipt', 'email'],
      [
        ['map-alice', token(20), 'alice@example.com'],
        ['map-bob', token(21), 'bob@example.com'],
      ],
    );
    const r = await cli(['run', source, '--platform', 'ios', '--run-id', 'cli-map', '--map', 'user=app_user_id', '--map', 'Receipt=Fetch_Token', '--map', 'email=$email'], env);
    expect(r.stderr).not.toMatch(/rc-migrate: /);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/succeeded\s+2/);
    // The attribute reached the API under the name --map gave it (a secret key sees a subscriber's attributes).
    fx.sandbox.configure({ apiKeys: [SANDBOX_KEY, 'sk_cli_reader'] });
    try {
      const res = await fetch(`${fx.sandbox.url}/v1/subscribers/map-alice`, { headers: { authorization: 'Bearer sk_cli_reader' } });
      const body = (await res.json()) as { subscriber: { subscriber_attributes?: Record<string, { value: string }> } };
      expect(body.subscriber.subscriber_attributes?.$email?.value).toBe('alice@example.com');
    } finally {
      fx.sandbox.configure({ apiKeys: [SANDBOX_KEY] });
    }
  });

  it("refuses a --map target with the library's message, and a pair that is not column=field", async () => {
    const bad = await cli(['run', good, '--map', 'receipt=receipt_data'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--map receipt=receipt_data: "receipt_data" is not a field; use one of app_user_id, fetch_token/);
    const malformed = await cli(['run', good, '--map', 'receipt'], env);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/--map receipt: write it as column=field/);
  });

  it('--config FILE: a layer between the defaults and the environment; an unknown key names itself and the file', async () => {
    const reportDir = join(fx.dir, 'from-config-file');
    const file = join(fx.dir, 'rc-migrate.json');
    await writeFile(file, JSON.stringify({ reportDir, ratePerSecond: '200/s', concurrency: 4 }));
    const { RC_MIGRATE_REPORT_DIR: _fromEnv, ...envWithoutReportDir } = env;
    const r = await cli(['run', good, '--platform', 'ios', '--run-id', 'cli-config-file', '--config', file], envWithoutReportDir);
    expect(r.code).toBe(0);
    expect(existsSync(join(reportDir, 'cli-config-file', 'summary.json'))).toBe(true);
    // The environment wins over the file.
    const viaEnv = await cli(['run', good, '--platform', 'ios', '--run-id', 'cli-config-env'], { ...env, RC_MIGRATE_CONFIG: file });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toContain(join(fx.dir, 'reports', 'cli-config-env'));

    const typo = join(fx.dir, 'typo.json');
    await writeFile(typo, JSON.stringify({ ratePerSecnd: 20 }));
    const refused = await cli(['status', '--run-id', 'cli-good', '--config', typo], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`config file ${typo}: unknown key "ratePerSecnd"`);
  });

  it('builds its program without running it, and answers a bad option from the library with exit 2', async () => {
    const names = buildProgram(captureIo().io).commands.map((c) => c.name());
    expect(names).toEqual(['run', 'ingest', 'plan', 'work', 'report', 'retry', 'verify', 'status', 'schedule', 'serve', 'sandbox']);
    const { io, stderr } = captureIo();
    expect(await main(['node', 'rc-migrate', 'status', '--run-id', 'a:b'], io)).toBe(2);
    expect(stderr()).toMatch(/run id "a:b" is not valid/);
    const schedule = captureIo();
    expect(await main(['node', 'rc-migrate', 'schedule', '--cron', '0 3 * * *', '--tz', 'Mars/Olympus', 'x.csv'], schedule.io)).toBe(2);
    expect(schedule.stderr()).toMatch(/Mars\/Olympus is not a time zone/);
  });

  it('work: SIGTERM lets in-flight requests finish, records them, and leaves no job active', async () => {
    fx.sandbox.configure({ latencyMs: 400 });
    try {
      const rows = Array.from({ length: 40 }, (_, i) => ['ios', `sig-${i}`, token(100 + i)]);
      const source = await writeCsv(fx.dir, 'sig.csv', ['platform', 'app_user_id', 'fetch_token'], rows);
      const config = testConfig(fx.prefix, fx.sandbox.url);
      await ingestSources({ config, logger: silentLogger(), sources: [source], runId: 'sig' });
      const before = fx.sandbox.stats().successfulReceipts;
      let pid = 0;
      const exited = cli(['work', '--concurrency', '6', '--rate', '100'], env, (p) => (pid = p));
      await until('3 requests in flight', () => fx.sandbox.stats().inFlight >= 3, { timeoutMs: 10_000, everyMs: 10 });
      process.kill(pid, 'SIGTERM');
      const r = await exited;
      expect(r.code).toBe(0);

      const redis = openRedis(redisUrl());
      const queue = openReceiptsQueue(redis, fx.prefix);
      try {
        const counts = await queue.getJobCounts('active', 'wait', 'delayed', 'prioritized');
        expect(counts.active).toBe(0);
        const state = await new RunLedger(redis, fx.prefix, 'sig').state();
        const sent = fx.sandbox.stats().successfulReceipts - before;
        // Every request that reached the API has its outcome; the rest are still queued.
        expect(state.rows_succeeded).toBe(sent);
        expect(sent).toBeGreaterThanOrEqual(3);
        expect((counts.wait ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0)).toBe(40 - sent);
      } finally {
        await queue.close();
        redis.disconnect();
      }
    } finally {
      fx.sandbox.configure({ latencyMs: 0 });
    }
  });
});

/** An in-process CLI's streams, captured. */
function captureIo(): { io: CliIo; stdout: () => string; stderr: () => string } {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  return { io: { stdout: out, stderr: err as unknown as NodeJS.WriteStream, exitCode: 0 }, stdout: () => stdout, stderr: () => stderr };
}
