// What a session or a command holds open (Redis connections, queues, workers, the HTTP client, timers, a metrics
// server), released through one list in the reverse of the order it was taken: a worker closes before the
// client it sends with, the queue before the connection under it.
//
// A release that waits on something outside the process (Redis answering QUIT, a controller's last Redis read)
// gets a bound: past it the release is given up on, what it holds is forced or left to lapse, and the list goes
// on. A Redis that stopped answering must not keep a finished or failed command from exiting.
import { endsWithin } from '../deadline.js';
import type { Logger } from '../logger.js';

/**
 * How long a release that waits for Redis's answer (QUIT, a controller's last read) may wait: Redis answers in
 * milliseconds, so this long means it is gone or cut off, and the release is given up on.
 */
export const REDIS_RELEASE_MS = 5000;

/** How long a release may wait, and what giving up on it leaves. */
export interface ReleaseBound<T = void> {
  withinMs: number;
  /** what is left undone when it is given up on, as the message says it ("commands not answered yet are dropped") */
  leaves: string;
  /** runs when it is given up on: what cuts it short (dropping a connection instead of waiting for QUIT's answer) */
  force?: (value: T) => unknown;
}

export interface Resource {
  /** for messages when a release fails */
  name: string;
  release(): unknown;
  bound?: ReleaseBound;
}

/** A point in the list: `releaseTo(mark)` releases what was added after it and keeps the rest. */
export type Mark = number;

export class Resources {
  private readonly held: Resource[] = [];

  /** `log`: where a release given up on is told; without one, it is thrown after the others like a failed release. */
  constructor(private readonly log?: Logger) {}

  /** Holds `value` until release; returns it, so acquiring and registering read as one line. */
  add<T>(name: string, value: T, release: (value: T) => unknown, bound?: ReleaseBound<T>): T {
    this.held.push({ name, release: () => release(value), ...(bound ? { bound: boundTo(bound, value) } : {}) });
    return value;
  }

  /** Registers a clean-up step with nothing to return (clearing a timer, removing a listener). */
  defer(name: string, release: () => unknown, bound?: ReleaseBound): void {
    this.held.push({ name, release, ...(bound ? { bound } : {}) });
  }

  mark(): Mark {
    return this.held.length;
  }

  /**
   * Releases everything added after `mark`, newest first. Every release runs even when one fails; the first
   * failure is thrown afterwards.
   */
  async releaseTo(mark: Mark): Promise<void> {
    let failure: Error | undefined;
    while (this.held.length > mark) {
      const resource = this.held.pop() as Resource;
      try {
        const released = Promise.resolve().then(() => resource.release());
        const { bound } = resource;
        if (bound === undefined) await released;
        else if (!(await endsWithin(released, bound.withinMs))) failure ??= this.gaveUp(resource.name, bound);
      } catch (err) {
        failure ??= new Error(`could not release ${resource.name}: ${(err as Error).message}`, { cause: err });
      }
    }
    if (failure !== undefined) throw failure;
  }

  /**
   * Releases everything, newest first. After work that failed (`after`), a failure to release is logged (or
   * warned) instead of thrown: the error that ended the work is the one the caller throws and the user reads.
   */
  async releaseAll(after?: { failure: unknown }): Promise<void> {
    if (after === undefined) return this.releaseTo(0);
    try {
      await this.releaseTo(0);
    } catch (err) {
      const failure = after.failure instanceof Error ? after.failure.message : String(after.failure);
      // Without a log, Node's warning channel (stderr): said, and not in place of the failure.
      if (this.log) this.log.error({ err, failure }, 'after the failure, not everything could be released');
      else process.emitWarning(`after the failure (${failure}), not everything could be released: ${(err as Error).message}`);
    }
  }

  /** Forces a release given up on and says so: logged when there is a log, else returned to be thrown. */
  private gaveUp(name: string, bound: ReleaseBound): Error | undefined {
    let forced = '';
    try {
      bound.force?.();
    } catch (err) {
      forced = ` (forcing it failed too: ${(err as Error).message})`;
    }
    const message = `gave up waiting for the ${name} to be released after ${bound.withinMs} ms: ${bound.leaves}${forced}`;
    if (this.log === undefined) return new Error(message);
    this.log.warn({ resource: name, waitedMs: bound.withinMs }, message);
    return undefined;
  }
}

function boundTo<T>(bound: ReleaseBound<T>, value: T): ReleaseBound {
  const { force, ...rest } = bound;
  return force ? { ...rest, force: () => force(value) } : rest;
}

/** Runs `fn` with a fresh list, released when it ends (however it ends); `log` as for `new Resources`. */
export async function withResources<T>(fn: (resources: Resources) => Promise<T>, log?: Logger): Promise<T> {
  const resources = new Resources(log);
  let result: T;
  try {
    result = await fn(resources);
  } catch (failure) {
    await resources.releaseAll({ failure });
    throw failure;
  }
  await resources.releaseAll();
  return result;
}
