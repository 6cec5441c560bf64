// The learned rate in a run's progress (issue 9): the few words the bar and the progress log line show, the bar
// itself at a (fake) terminal, and the JSON progress line off a terminal.
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { barLine, LimitNews, runProgressBar } from '../src/progress.js';
import { runProgressLog } from '../src/session/progressLog.js';
import { briefRate, type RunProgress } from '../src/session/rateProgress.js';
import type { RateView } from '../src/workers/rate/sharedRate.js';

const learned: RateView = { scope: 'default', rate: 48.52, phase: 'holding', window: 'second', learnedAt: new Date().toISOString() };
const counts = { rows_read: 10, rows_queued: 8, requests_sent: 8, rows_succeeded: 8, rows_failed: 0, rows_rejected: 0, rows_held: 0 };

describe('the learned rate in the progress', () => {
  it('says the rate in a few words: learned, discovering, configured, and the sum over keys', () => {
    expect(briefRate(undefined)).toBeUndefined();
    expect(briefRate([])).toBeUndefined();
    expect(briefRate([learned])).toBe('48.5/s learned');
    expect(briefRate([{ scope: 'default', rate: 5, phase: 'discovering', window: 'second' }])).toBe('5.00/s discovering');
    expect(briefRate([{ scope: 'default', rate: 25, phase: 'holding', window: 'second', ceiling: 25 }])).toBe('25.0/s configured');
    expect(briefRate([learned, { ...learned, scope: 'key-abcdef01', rate: 20 }])).toBe('68.5/s learned, 2 keys');
  });

  it('shows it on the bar at a terminal', async () => {
    const out = new PassThrough();
    let screen = '';
    out.on('data', (d: Buffer) => (screen += d.toString()));
    const tty = Object.assign(out, { isTTY: true, columns: 200, rows: 40, cursorTo: () => true, moveCursor: () => true, clearLine: () => true, clearScreenDown: () => true });
    const bar = runProgressBar(tty as unknown as NodeJS.WriteStream);
    bar.onState({ ...counts, rates: [learned] });
    bar.stop();
    await new Promise((r) => setImmediate(r));
    expect(screen).toContain('rate 48.5/s learned');
  });

  it("shows the App Store Server API lookups' rate beside it, only for a run with lookups", async () => {
    const lookupRate: RateView = { scope: 'apple', rate: 9.5, phase: 'holding', window: 'second', learnedAt: new Date().toISOString() };
    const draw = async (state: Parameters<ReturnType<typeof runProgressBar>['onState']>[0]): Promise<string> => {
      const out = new PassThrough();
      let screen = '';
      out.on('data', (d: Buffer) => (screen += d.toString()));
      const tty = Object.assign(out, { isTTY: true, columns: 200, rows: 40, cursorTo: () => true, moveCursor: () => true, clearLine: () => true, clearScreenDown: () => true });
      const bar = runProgressBar(tty as unknown as NodeJS.WriteStream);
      bar.onState(state);
      bar.stop();
      await new Promise((r) => setImmediate(r));
      return screen;
    };
    expect(await draw({ ...counts, rates: [learned], lookupRate })).toContain('rate 48.5/s learned · lookups 9.50/s learned');
    const without = await draw({ ...counts, rates: [learned] });
    expect(without).toContain('rate 48.5/s learned');
    expect(without).not.toContain('lookups');
    // Narrower, the lookups' figure stays while there is room, then goes before RevenueCat's rate does.
    const parts = {
      progress: 0.45,
      eta: '2m05s',
      read: 1500,
      requests: 712,
      succeeded: 650,
      failed: 12,
      rejected: 0,
      held: 0,
      rowsPerSecond: 56.12,
      rate: '58.5/s learned',
      lookups: '9.50/s learned',
    };
    expect(barLine(200, parts)).toContain('· rate 58.5/s learned · lookups 9.50/s learned | ETA');
    expect(barLine(120, parts)).toContain('· rate 58.5/s · lookups 9.50/s | ETA');
    for (const width of [100, 80, 60]) {
      const line = barLine(width, parts);
      expect([...line].length, `at ${width} columns: ${line}`).toBeLessThan(width);
      expect(line).toContain('rate 58.5/s');
    }
  });

  it('puts it in the progress log line off a terminal', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const state = { ...counts, rows_duplicate: 0, rows_already_migrated: 0 } as unknown as RunProgress;
    const line = runProgressLog(createLogger('info', out), 1);
    // the line is throttled: one passes once its interval (1 ms here) has gone by since the last
    await sleep(5);
    line({ ...state, rates: [learned] });
    await new Promise((r) => setImmediate(r));
    const logged = JSON.parse(text.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(logged).toMatchObject({ msg: 'progress', succeeded: 8, rate: '48.5/s learned' });
    expect(logged).not.toHaveProperty('lookupRate');
    // A run with lookups: their rate too.
    await sleep(5);
    line({ ...state, rates: [learned], lookupRate: { scope: 'apple', rate: 40, phase: 'holding', window: 'second', ceiling: 40 } });
    await new Promise((r) => setImmediate(r));
    expect(JSON.parse(text.trim().split('\n').at(-1)!)).toMatchObject({ rate: '48.5/s learned', lookupRate: '40.0/s configured' });
  });

  it('fits the bar to the terminal: parts shorten before anything is cut, and the rate stays', () => {
    const parts = { progress: 0.45, eta: '2m05s', read: 1500, requests: 712, succeeded: 650, failed: 12, rejected: 0, held: 0, rowsPerSecond: 56.12, rate: '58.5/s learned' };
    const wide = barLine(200, parts);
    expect(wide).toMatch(/45% \| read 1500 · sent 712 · ok 650 · failed 12 · rejected 0 \| 56\.1 rows\/s · rate 58\.5\/s learned \| ETA 2m05s$/);
    for (const width of [120, 100, 80, 60]) {
      const line = barLine(width, parts);
      expect([...line].length, `at ${width} columns: ${line}`).toBeLessThan(width);
      // the rate's figure, whole, and the ETA, at every width down to 60 columns
      expect(line).toContain('rate 58.5/s');
      expect(line).toMatch(/ETA 2m05s$/);
    }
    expect(barLine(80, parts)).toMatch(/ok 650 · failed 12/);
    // very narrow: cut, never wrapped
    expect([...barLine(30, parts)].length).toBeLessThan(30);
  });

  it('says the limit once in a plain sentence when found, and again only when it moves by more than 10%', () => {
    const news = new LimitNews(0.98);
    const at = (rate: number, phase: RateView['phase'] = 'holding'): RateView[] => [{ ...learned, rate, phase }];
    expect(news.next(at(20, 'discovering'))).toBeUndefined();
    expect(news.next([{ ...learned, learnedAt: undefined as unknown as string }].map(({ learnedAt: _l, ...v }) => v))).toBeUndefined();
    expect(news.next(at(57.3))).toBe("RevenueCat's limit is about 57 requests/s; holding 56");
    expect(news.next(at(55))).toBeUndefined();
    expect(news.next(at(62))).toBeUndefined();
    expect(news.next(at(50))).toBe("RevenueCat's limit is now about 50 requests/s; holding 49");
    expect(news.next(at(50.2))).toBeUndefined();
  });
});
