// `rc-migrate run` at a real terminal (tmux): the screen shows the progress bar, human-readable warnings and
// a clean summary, and no JSON log line; the per-row lines are in reports/<run-id>/run.log. tmux is required:
// .ci/run installs it, and without it this test fails rather than skipping.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { redisUrl } from './support/redis.js';
import { SANDBOX_KEY, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { until } from './support/until.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');
/** A tmux server of this test's own (its own socket), so no user session is touched. */
const SOCKET = `rcm-terminal-${process.pid}`;

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
}

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

describe('a run at a terminal', () => {
  const fx = pipelineFixture('terminal', { latencyMs: 60 });

  afterAll(() => {
    try {
      tmux('kill-server');
    } catch {
      // not started
    }
  });

  it('shows the bar, readable warnings and the summary, no JSON line; the per-row lines go to run.log', async () => {
    expect(hasTmux(), 'tmux is needed for this test: apt-get install -y tmux').toBe(true);
    // Rows that fail, rows the store accepts without the product (a per-row warning), and plain ones.
    const rows = Array.from({ length: 60 }, (_, i) => {
      const directive = i % 10 === 0 ? 'invalid' : i % 10 === 5 ? 'noproduct' : '';
      return ['ios', `term-${i}`, token(i, directive), 'com.example.premium.monthly'];
    });
    const source = await writeCsv(fx.dir, 'terminal.csv', ['platform', 'app_user_id', 'fetch_token', 'product_id'], rows);
    const reports = join(fx.dir, 'reports');
    const done = join(fx.dir, 'exit-code');
    const env = {
      PATH: process.env.PATH ?? '',
      TERM: 'xterm-256color',
      REDIS_URL: redisUrl(),
      RC_MIGRATE_PREFIX: fx.prefix,
      REVENUECAT_API_URL: fx.sandbox.url,
      REVENUECAT_API_KEY: SANDBOX_KEY,
      RC_MIGRATE_REPORT_DIR: reports,
      LOG_LEVEL: 'info',
    };
    const script = join(fx.dir, 'run.sh');
    await writeFile(
      script,
      [
        ...Object.entries(env).map(([k, v]) => `export ${k}=${quote(v)}`),
        `${quote(process.execPath)} ${quote(CLI)} run ${quote(source)} --run-id term-1 --rate 200 --concurrency 4`,
        `echo $? > ${quote(done)}`,
        'sleep 600',
      ].join('\n'),
    );
    tmux('new-session', '-d', '-s', 'run', '-x', '200', '-y', '50', `bash ${quote(script)}`);
    await until('the run to end', () => existsSync(done), { timeoutMs: 60_000, everyMs: 100 });
    const screen = tmux('capture-pane', '-p', '-J', '-t', 'run', '-S', '-200');

    expect((await readFile(done, 'utf8')).trim()).toBe('1'); // some rows failed
    expect(screen).not.toMatch(/\{"level":/);
    expect(screen).toMatch(/run term-1: complete/);
    // the invalid receipts fail; the receipts accepted without their product fail their reconciliation
    expect(screen).toMatch(/succeeded\s+48/);
    expect(screen).toMatch(/failed\s+12/);
    expect(screen).toContain(`report            ${join(reports, 'term-1')}`);
    // the bar was drawn (its final state: every queued row finished)
    expect(screen).toMatch(/100% \| read 60 · sent \d+ · ok 48 · failed 12/);
    // where the log went, and that the per-row warnings are there
    expect(screen).toContain(`log: ${join(reports, 'term-1', 'run.log')} (6 warnings about single rows`);

    const log = (await readFile(join(reports, 'term-1', 'run.log'), 'utf8')).trim().split('\n');
    const records = log.map((l) => JSON.parse(l) as { level: number; msg: string; line?: number });
    expect(records.filter((r) => r.msg === 'row accepted but not reconciled')).toHaveLength(6);
    expect(records.filter((r) => r.msg === 'row failed permanently').length).toBeGreaterThanOrEqual(6);
    expect(records.some((r) => r.msg === 'run ended')).toBe(true);
  });

  it('discovering the limit at an 80-column terminal: no warnings, the rate on a bar that fits, the limit in a sentence', async () => {
    expect(hasTmux(), 'tmux is needed for this test: apt-get install -y tmux').toBe(true);
    fx.sandbox.reset();
    fx.sandbox.configure({ rateLimitPerSecond: 40, rateLimitWindow: 'fixed', rateLimitHeaders: false, latencyMs: 20 });
    const prefix = fx.newPrefix('terminal-80');
    const rows = Array.from({ length: 700 }, (_, i) => ['ios', `t80-${i}`, token(1000 + i), 'com.example.premium.monthly']);
    const source = await writeCsv(fx.dir, 'terminal80.csv', ['platform', 'app_user_id', 'fetch_token', 'product_id'], rows);
    const reports = join(fx.dir, 'reports80');
    const done = join(fx.dir, 'exit-code-80');
    const env = {
      PATH: process.env.PATH ?? '',
      TERM: 'xterm-256color',
      REDIS_URL: redisUrl(),
      RC_MIGRATE_PREFIX: prefix,
      REVENUECAT_API_URL: fx.sandbox.url,
      REVENUECAT_API_KEY: SANDBOX_KEY,
      RC_MIGRATE_REPORT_DIR: reports,
      LOG_LEVEL: 'info',
    };
    const script = join(fx.dir, 'run80.sh');
    await writeFile(
      script,
      [
        ...Object.entries(env).map(([k, v]) => `export ${k}=${quote(v)}`),
        // No --rate: the limit is discovered.
        `${quote(process.execPath)} ${quote(CLI)} run ${quote(source)} --run-id term-80 --concurrency 8`,
        `echo $? > ${quote(done)}`,
        'sleep 600',
      ].join('\n'),
    );
    tmux('new-session', '-d', '-s', 'run80', '-x', '80', '-y', '40', `bash ${quote(script)}`);
    let bars: string[] = [];
    const deadline = Date.now() + 90_000;
    while (!existsSync(done) && Date.now() < deadline) {
      // The bar while the run goes (its last line on screen), as a person would see it.
      const live = tmux('capture-pane', '-p', '-t', 'run80')
        .split('\n')
        .filter((l) => /\d+% \|/.test(l));
      bars = [...bars, ...live.slice(-1)];
      await sleep(500); // sampling the screen while the run goes, not waiting for a state
    }
    expect(existsSync(done), 'the run ended within 90 s').toBe(true);
    const screen = tmux('capture-pane', '-p', '-t', 'run80', '-S', '-300');
    expect((await readFile(done, 'utf8')).trim()).toBe('0');
    expect(screen).toMatch(/run term-80: complete/);
    // Finding the limit is not a warning: no WARN line on screen, no JSON.
    expect(screen).not.toMatch(/WARN/);
    expect(screen).not.toMatch(/\{"level":/);
    // The bar fits the 80 columns and shows the rate whole (its figure, not cut at the edge).
    expect(bars.length).toBeGreaterThan(2);
    for (const bar of bars) expect(bar.trimEnd().length, bar).toBeLessThan(80);
    expect(bars.some((b) => /rate \d+(\.\d+)?\/s/.test(b))).toBe(true);
    // The limit in a plain sentence, a few times at most (when found, and when it moved by more than 10%).
    const sentences = screen.split('\n').filter((l) => l.startsWith("RevenueCat's limit is"));
    expect(sentences.length).toBeGreaterThanOrEqual(1);
    expect(sentences.length).toBeLessThanOrEqual(3);
    expect(sentences[0]).toMatch(/^RevenueCat's limit is about \d+ requests\/s; holding \d+$/);
    // The rate's changes are in run.log, at info.
    const log = (await readFile(join(reports, 'term-80', 'run.log'), 'utf8')).trim().split('\n');
    const changes = log.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((r) => /^request rate (lowered|raised)$/.test(r.msg));
    expect(changes.length).toBeGreaterThan(0);
    expect(changes.every((r) => r.level === 30)).toBe(true);
  });
});
