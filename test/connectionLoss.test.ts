// A write cut off by a lost connection is tried again once the connection is back (src/redis/connectionLoss.ts);
// any other error, an abort past the deadline or a stopped ingest is thrown as it is.
import { describe, expect, it } from 'vitest';
import { isConnectionAbort, retryThroughOutage } from '../src/redis/connectionLoss.js';

const aborted = (): Error => Object.assign(new Error('Command aborted due to connection close'), { name: 'AbortError' });

describe('connection loss', () => {
  it('tells an aborted command (alone or inside an EXEC) from other errors', () => {
    expect(isConnectionAbort(aborted())).toBe(true);
    expect(isConnectionAbort(Object.assign(new Error('EXECABORT Transaction discarded'), { previousErrors: [aborted()] }))).toBe(true);
    expect(isConnectionAbort(new Error('OOM command not allowed'))).toBe(false);
    expect(isConnectionAbort(Object.assign(new Error('This operation was aborted'), { name: 'AbortError' }))).toBe(false);
    expect(isConnectionAbort('Command aborted due to connection close')).toBe(false);
  });

  it('tries an aborted write again until it gets through, and says so each time', async () => {
    let calls = 0;
    const said: string[] = [];
    const value = await retryThroughOutage(
      () => {
        calls++;
        return calls < 3 ? Promise.reject(aborted()) : Promise.resolve('written');
      },
      { onAbort: (err) => said.push(err.message) },
    );
    expect(value).toBe('written');
    expect(calls).toBe(3);
    expect(said).toHaveLength(2);
  });

  it('throws other errors at once, and an abort past the deadline or once stopped', async () => {
    let calls = 0;
    await expect(
      retryThroughOutage(() => {
        calls++;
        return Promise.reject(new Error('WRONGTYPE'));
      }),
    ).rejects.toThrow('WRONGTYPE');
    expect(calls).toBe(1);
    await expect(retryThroughOutage(() => Promise.reject(aborted()), { deadlineMs: 0 })).rejects.toThrow(/connection close/);
    const stopped = new AbortController();
    stopped.abort();
    await expect(retryThroughOutage(() => Promise.reject(aborted()), { signal: stopped.signal })).rejects.toThrow(/connection close/);
  });
});
