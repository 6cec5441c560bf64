// The one way a test waits for a state: poll until the probe says it is there, or fail at a deadline naming what
// was awaited (never a fixed sleep, which is too short on a busy machine and wasted time on an idle one).
import { setTimeout as sleep } from 'node:timers/promises';

export interface UntilOptions {
  /** how long to wait before failing (default 30 s: generous, for a busy 2-core machine) */
  timeoutMs?: number;
  /** time between probes (default 50 ms) */
  everyMs?: number;
  /** what the state was when the deadline passed, added to the error */
  state?: () => string;
}

/**
 * Polls `probe` until it returns something other than false or undefined, and returns that (true, for a plain
 * check). Throws, naming `what`, once `timeoutMs` has passed.
 */
export async function until<T>(what: string, probe: () => T | false | undefined | Promise<T | false | undefined>, opts: UntilOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== false && value !== undefined) return value;
    if (Date.now() > deadline) {
      const state = opts.state?.() ?? '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${state ? `\n${state}` : ''}`);
    }
    await sleep(opts.everyMs ?? 50);
  }
}
