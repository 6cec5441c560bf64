// Every wait the sandbox does (latency, hangs) goes through here so close() can end them all at once:
// a hanging request must not keep a test process alive for hangMs.

interface Pending {
  timer: NodeJS.Timeout;
  wake: () => void;
}

export interface Closable {
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

export class Sleeper {
  private readonly pending = new Set<Pending>();
  private closed = false;

  /** Resolves after `ms`, when `until` (a socket) closes, or when cancelAll() runs, whichever is first. */
  sleep(ms: number, until?: Closable): Promise<void> {
    if (this.closed || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const entry: Pending = {
        timer: setTimeout(() => entry.wake(), ms),
        wake: () => {
          clearTimeout(entry.timer);
          this.pending.delete(entry);
          until?.off('close', entry.wake);
          resolve();
        },
      };
      this.pending.add(entry);
      until?.once('close', entry.wake);
    });
  }

  cancelAll(): void {
    this.closed = true;
    for (const entry of [...this.pending]) entry.wake();
  }
}
