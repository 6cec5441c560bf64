// `run` whose ingest fails while its in-process worker has requests in flight: the built CLI, as a user runs it,
// must exit with 5 and the cause within a bounded time, never wait forever in its shutdown. A chaos run once hung
// here: the ingest failed during a Redis restart, the worker's close was "forced" after shutdownTimeoutMs and the
// process never exited (BullMQ's close(true) only returned the close under way, which waited for the worker's
// job-waiting connection, cancelled mid-reconnect, to end: workers/jobWorker.ts). `work` stopped by SIGTERM met
// the same close, so it is here too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisKeys } from '../src/redis/keys.js';
import { SANDBOX_KEY, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { redisUrl } from './support/redis.js';
import { startRedisProxy, type RedisProxy } from './support/redisProxy.js';
import { until } from './support/until.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');
const HEADER = ['platform', 'app_user_id', 'fetch_token'];

/** How long after its ingest failed `run` may take to exit: the worker's deadline (1 s here) and some slack. */
const EXIT_WITHIN_MS = 10_000;
/** The same when its requests in flight outlast the deadline: cut off at 1 s, well before their 8 s are up. */
const CUT_OFF_WITHIN_MS = 5000;

interface Ended {
  code: number | null;
  stderr: string;
  /** when the process was gone (Date.now()) */
  at: number;
}

interface Child {
  pid: number;
  /** the JSON log so far */
  stderr(): string;
  ended: Promise<Ended>;
}

/** An rc-migrate command as a child; killed (and the test failed) should it outlive `limitMs`. */
function cli(args: string[], env: Record<string, string>, limitMs = 30_000): Child {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<Ended>((resolve, reject) => {
    const limit = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rc-migrate ${args[0] ?? ''} still running after ${limitMs} ms; its log ends:\n${stderr.split('\n').slice(-15).join('\n')}`));
    }, limitMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(limit);
      resolve({ code, stderr, at: Date.now() });
    });
  });
  return { pid: child.pid ?? 0, stderr: () => stderr, ended };
}

const run = (args: string[], env: Record<string, string>): Promise<Ended> => cli(['run', ...args], env).ended;

/** The JSON log lines the child wrote whose message matches. */
function logLines(stderr: string, msg: RegExp): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => msg.test(String(l.msg)));
}

const rows = (n: number, user: string, from: number): string[][] => Array.from({ length: n }, (_, i) => ['ios', `${user}-${i}`, token(from + i)]);

describe('a process that stops with rows in flight or its Redis connections cut: run and work exit within bounds', () => {
  const fx = pipelineFixture('runfail');
  let proxy: RedisProxy;
  let redis: Redis;

  beforeAll(async () => {
    proxy = await startRedisProxy(redisUrl());
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    fx.sandbox.configure({ latencyMs: 0 });
    redis.disconnect();
    await proxy.close();
  });

  /** The CLI's environment, and a config file: a 1 s worker deadline, and a queue that holds the ingest back. */
  async function setup(name: string, overrides: Record<string, unknown> = {}): Promise<{ env: Record<string, string>; config: string; prefix: string }> {
    const prefix = fx.newPrefix(name);
    const config = join(fx.dir, `${name}.json`);
    await writeFile(
      config,
      JSON.stringify({ shutdownTimeoutMs: 1000, concurrency: 4, ingestChunkSize: 4, highWaterMark: 8, ratePerSecond: 1000, requestTimeoutMs: 60_000, ...overrides }),
    );
    const env = {
      REDIS_URL: redisUrl(),
      RC_MIGRATE_PREFIX: prefix,
      REVENUECAT_API_URL: fx.sandbox.url,
      REVENUECAT_API_KEY: SANDBOX_KEY,
      LOG_LEVEL: 'info',
      RC_MIGRATE_REPORT_DIR: join(fx.dir, 'reports'),
    };
    return { env, config, prefix };
  }

  it('a source gone when the ingest reaches it, with the worker waiting to reconnect to Redis: exit 5 naming the file (this hung)', async () => {
    fx.sandbox.configure({ latencyMs: 1000 });
    const { env, config } = await setup('vanished');
    const first = await writeCsv(fx.dir, 'first.csv', HEADER, rows(20, 'v', 0));
    const second = await writeCsv(fx.dir, 'second.csv', HEADER, rows(10, 'w', 100));
    // Through the proxy, which can cut the worker's job-waiting (BZPOPMIN) connection as a Redis restart would.
    const ended = run([first, second, '--config', config], { ...env, REDIS_URL: proxy.url });
    await until('requests in flight and the worker waiting for jobs', () => fx.sandbox.stats().inFlight >= 2 && proxy.blocking() >= 1, { everyMs: 10 });
    // The second file goes while the first is still being read (the queue holds the ingest back)...
    await rm(second);
    // ...and the worker's job-waiting connection drops and cannot come back: it waits to reconnect.
    expect(proxy.cutBlocking()).toBeGreaterThanOrEqual(1);
    const cutAt = Date.now();
    try {
      const r = await ended;
      expect(r.code).toBe(5);
      expect(r.stderr).toContain(`rc-migrate: unexpected error: Error: cannot open CSV file "${second}": ENOENT`);
      expect(r.at - cutAt).toBeLessThan(EXIT_WITHIN_MS + 5000);
    } finally {
      proxy.admit();
    }
  });

  it('a Redis error that is not retried (WRONGTYPE) with requests slower than the worker deadline: cut off, exit 5 naming it', async () => {
    // Every request takes 8 s: waiting for them would take some 8 s where the deadline says 1.
    fx.sandbox.configure({ latencyMs: 8000 });
    // Locks that lapse soon: the rows cut off come back as stalled jobs within seconds for the run continued below.
    const { env, config, prefix } = await setup('wrongtype', { lockDurationMs: 2000, stalledIntervalMs: 1000 });
    const source = await writeCsv(fx.dir, 'wrongtype.csv', HEADER, rows(30, 'x', 200));
    const ended = run([source, '--config', config], env);
    await until('4 requests in flight', () => fx.sandbox.stats().inFlight >= 4, { everyMs: 10 });
    // The ingest, paused at the high-water mark, reads this key on its next look at the queue (rows of no lookup
    // group here: nothing else reads it).
    await redis.set(new RedisKeys(prefix).lookupWaiting, 'not a set');
    const brokeAt = Date.now();
    const r = await ended;
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/rc-migrate: unexpected error: ReplyError: WRONGTYPE/);
    expect(r.at - brokeAt).toBeLessThan(CUT_OFF_WITHIN_MS);
    // It says what it gave up on.
    const gaveUp = logLines(r.stderr, /^gave up waiting for the worker to close after 1000 ms: 4 requests in flight did not finish/);
    expect(gaveUp).toHaveLength(1);
    expect(gaveUp[0]).toMatchObject({ requestsInFlight: 4 });

    // As exit 5 says, the run can be continued once the cause is gone: nothing was lost, the rows cut off included
    // (their users stay busy at the API until its 8 s are up: their rows are tried again until then).
    const runId = String(logLines(r.stderr, /^run started$/)[0]?.run);
    await redis.del(new RedisKeys(prefix).lookupWaiting);
    fx.sandbox.configure({ latencyMs: 0 });
    const continued = await run([source, '--config', config, '--run-id', runId], env);
    expect(continued.code, continued.stderr.split('\n').slice(-5).join('\n')).toBe(0);
  });

  it('work stopped (SIGTERM) while its job-waiting connections wait to reconnect: exits 4, saying what it gave up on (this hung)', async () => {
    fx.sandbox.configure({ latencyMs: 0 });
    const { env, config } = await setup('work');
    // Its two workers (rows, scheduled runs) each wait for jobs on a connection of their own.
    const work = cli(['work', '--config', config], { ...env, REDIS_URL: proxy.url });
    await until('both workers waiting for jobs', () => proxy.blocking() >= 2 && /workers started/.test(work.stderr()), { everyMs: 20 });
    expect(proxy.cutBlocking()).toBe(2);
    // Past the first quick tries: the connections are waiting to reconnect, as they mostly are during a restart.
    await until('2 failed reconnections', () => (work.stderr().match(/ECONNRESET|ECONNREFUSED|EPIPE|Connection is closed/g) ?? []).length >= 2, { everyMs: 20 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    try {
      process.kill(work.pid, 'SIGTERM');
      const stoppedAt = Date.now();
      const r = await work.ended;
      expect(r.at - stoppedAt).toBeLessThan(EXIT_WITHIN_MS);
      // 4: the close had to be forced (docs/reports.md: requests still in flight at shutdownTimeoutMs, or no close).
      expect(r.code).toBe(4);
      expect(logLines(r.stderr, /^gave up waiting for the worker to close after 1000 ms: BullMQ's close did not finish with no request in flight/)).toHaveLength(1);
      expect(logLines(r.stderr, /^gave up waiting for the scheduled-run worker to close after 1000 ms: its job-waiting Redis connection was reconnecting/)).toHaveLength(1);
    } finally {
      proxy.admit();
    }
  });
});
