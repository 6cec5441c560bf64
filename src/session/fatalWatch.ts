// The one loop that watches the queue's fatal-stop flag (set by whichever worker, on whichever machine, got a
// fatal API answer), for sessions and for `work`.
import type { FatalReason, FatalStop } from '../queue/fatalStop.js';
import type { Resources } from './resources.js';

/** How often the flag is read: a fatal answer has already paused the queue; this only tells the process. */
export const FATAL_WATCH_MS = 250;

/** Calls `onFatal` once, the first time the flag is seen; released with the resources. */
export function watchFatal(fatal: FatalStop, resources: Resources, onFatal: (reason: FatalReason) => void, everyMs = FATAL_WATCH_MS): void {
  let seen = false;
  const timer = setInterval(() => {
    if (seen) return;
    void fatal
      .reason()
      .then((reason) => {
        if (reason && !seen) {
          seen = true;
          onFatal(reason);
        }
      })
      // A Redis outage is waited out by the connection; the next tick reads again.
      .catch(() => undefined);
  }, everyMs);
  resources.defer('fatal watch', () => clearInterval(timer));
}
