// What a session or a command holds open (Redis connections, queues, workers, the HTTP client, timers, a metrics
// server), released through one list in the reverse of the order it was taken: a worker closes before the
// client it sends with, the queue before the connection under it.

export interface Resource {
  /** for messages when a release fails */
  name: string;
  release(): unknown;
}

/** A point in the list: `releaseTo(mark)` releases what was added after it and keeps the rest. */
export type Mark = number;

export class Resources {
  private readonly held: Resource[] = [];

  /** Holds `value` until release; returns it, so acquiring and registering read as one line. */
  add<T>(name: string, value: T, release: (value: T) => unknown): T {
    this.held.push({ name, release: () => release(value) });
    return value;
  }

  /** Registers a clean-up step with nothing to return (clearing a timer, removing a listener). */
  defer(name: string, release: () => unknown): void {
    this.held.push({ name, release });
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
        await resource.release();
      } catch (err) {
        failure ??= new Error(`could not release ${resource.name}: ${(err as Error).message}`, { cause: err });
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** Releases everything, newest first. */
  releaseAll(): Promise<void> {
    return this.releaseTo(0);
  }
}

/** Runs `fn` with a fresh list, released when it ends (however it ends). */
export async function withResources<T>(fn: (resources: Resources) => Promise<T>): Promise<T> {
  const resources = new Resources();
  try {
    return await fn(resources);
  } finally {
    await resources.releaseAll();
  }
}
