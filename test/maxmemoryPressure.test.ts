// MemoryPressure on its own: which errors are Redis at maxmemory, how a refused write is retried, and how many
// lines a full Redis costs the log (one warning per episode, whatever the number of rows or callers).
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { isOutOfMemory, MemoryPressure } from '../src/redis/memoryPressure.js';

const OOM = "OOM command not allowed when used memory > 'maxmemory'.";

function refusal(message = OOM): Error {
  return Object.assign(new Error(message), { name: 'ReplyError' });
}

function capture(): {
  lines: { level: number; msg: string; role?: string; usedBytes?: number; maxBytes?: number }[];
  pressure: (opts?: Partial<ConstructorParameters<typeof MemoryPressure>[0]>) => MemoryPressure;
} {
  const lines: { level: number; msg: string }[] = [];
  const logger = createLogger('debug', { write: (s: string) => (lines.push(JSON.parse(s) as { level: number; msg: string }), true) } as unknown as NodeJS.WritableStream);
  return {
    lines,
    pressure: (opts = {}) => new MemoryPressure({ logger, role: 'ingest', advice: 'free memory', minDelayMs: 1, maxDelayMs: 2, ...opts }),
  };
}

/** An operation refused `n` times, then accepted. */
function refusedTimes(n: number, error: () => Error = () => refusal()): { op: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    op: () => {
      calls++;
      return calls <= n ? Promise.reject(error()) : Promise.resolve('ok');
    },
    calls: () => calls,
  };
}

describe('isOutOfMemory', () => {
  it('knows the refusal directly, from a script, and inside a discarded MULTI', () => {
    expect(isOutOfMemory(refusal())).toBe(true);
    expect(isOutOfMemory(refusal(`${OOM} script: 5ab432e88830d573e2fa33392ffbd4ad25a9b100, on @user_script:589.`))).toBe(true);
    const execAbort = Object.assign(new Error('EXECABORT Transaction discarded because of previous errors.'), { previousErrors: [refusal()] });
    expect(isOutOfMemory(execAbort)).toBe(true);
  });

  it('is not fooled by other errors', () => {
    expect(isOutOfMemory(new Error('READONLY You cannot write against a read only replica.'))).toBe(false);
    expect(isOutOfMemory(Object.assign(new Error('EXECABORT Transaction discarded because of previous errors.'), { previousErrors: [new Error('WRONGTYPE')] }))).toBe(false);
    expect(isOutOfMemory('OOM command not allowed')).toBe(false);
    expect(isOutOfMemory(undefined)).toBe(false);
  });
});

describe('MemoryPressure', () => {
  it('retries a refused write until Redis accepts it, warning once with the figures and logging the resumption', async () => {
    const { lines, pressure } = capture();
    const memory = pressure({ redis: () => ({ info: () => Promise.resolve('used_memory:70000000\r\nmaxmemory:67108864\r\n') }) });
    const write = refusedTimes(5);
    await expect(memory.retry(write.op)).resolves.toBe('ok');
    expect(write.calls()).toBe(6);
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toBe('Redis is at maxmemory (used 66.8 MB of 64.0 MB): ingest paused; free memory');
    expect(warnings[0]).toMatchObject({ role: 'ingest', usedBytes: 70000000, maxBytes: 67108864 });
    expect(lines.filter((l) => l.msg === 'Redis accepts writes again: ingest resumed')).toHaveLength(1);
    expect(memory.full).toBe(false);
  });

  it('throws any other error at once, without retrying or warning', async () => {
    const { lines, pressure } = capture();
    const memory = pressure();
    const write = refusedTimes(3, () => new Error('WRONGTYPE Operation against a key holding the wrong kind of value'));
    await expect(memory.retry(write.op)).rejects.toThrow('WRONGTYPE');
    expect(write.calls()).toBe(1);
    expect(lines).toEqual([]);
  });

  it('warns once for many callers refused at the same time', async () => {
    const { lines, pressure } = capture();
    const memory = pressure();
    const writes = Array.from({ length: 20 }, (_, i) => refusedTimes(3 + (i % 4)));
    await Promise.all(writes.map((w) => memory.retry(w.op)));
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
    expect(memory.warnings).toBe(1);
  });

  it('a write that was never refused does not end the episode', async () => {
    const { lines, pressure } = capture();
    const memory = pressure();
    expect(memory.noteError(refusal())).toBe(true);
    expect(memory.full).toBe(true);
    await memory.retry(() => Promise.resolve('deletions go through a full Redis'));
    expect(memory.full).toBe(true);
    expect(lines.filter((l) => l.msg.startsWith('Redis accepts writes again'))).toEqual([]);
  });

  it('a Redis hovering at its limit warns once, not once per flip', async () => {
    let t = 0;
    const { lines, pressure } = capture();
    const memory = pressure({ now: () => t, quietMs: 30_000 });
    for (let flip = 0; flip < 10; flip++) {
      t += 1000;
      await memory.retry(refusedTimes(1).op);
    }
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
    // Once Redis has been fine for longer than quietMs, a new episode is news again.
    t += 60_000;
    await memory.retry(refusedTimes(1).op);
    expect(lines.filter((l) => l.level === 40)).toHaveLength(2);
  });

  it('an episode only BullMQ met ends after quietMs without refusals, so the next one warns', () => {
    let t = 0;
    const { lines, pressure } = capture();
    const memory = pressure({ now: () => t, quietMs: 30_000 });
    expect(memory.noteError(refusal())).toBe(true);
    t += 10_000;
    expect(memory.noteError(refusal())).toBe(true);
    expect(memory.noteError(new Error('Connection is closed.'))).toBe(false);
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
    t += 90_000;
    memory.noteError(refusal());
    expect(lines.filter((l) => l.level === 40)).toHaveLength(2);
  });

  it('runs onRefused after each refusal, before waiting, and ignores its errors', async () => {
    const { pressure } = capture();
    const memory = pressure();
    let held = 0;
    const write = refusedTimes(3);
    await memory.retry(write.op, {
      onRefused: () => {
        held++;
        return held === 2 ? Promise.reject(new Error('could not extend')) : Promise.resolve();
      },
    });
    expect(held).toBe(3);
  });

  it('stops waiting when its signal aborts, with an error that names maxmemory', async () => {
    const { pressure } = capture();
    const memory = pressure({ minDelayMs: 50, maxDelayMs: 50 });
    const stop = new AbortController();
    const waiting = memory.retry(refusedTimes(1_000_000).op, { signal: stop.signal });
    setTimeout(() => stop.abort(), 20);
    await expect(waiting).rejects.toThrow(/ingest stopped while Redis was at maxmemory/);
  });
});
