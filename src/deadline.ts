// Waiting for something with a bound: shutting down must not wait forever on what may never end (a Redis that
// no longer answers, a connection that will never reconnect), so every such wait says when it gave up.

/**
 * Waits for `work` at most `ms`: true when it ended in time (a rejection is thrown), false when the time ran out
 * first. Work given up on goes on unobserved: its later rejection is swallowed, never an unhandled one.
 */
export async function endsWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  const ended = work.then(() => true);
  ended.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([ended, late]);
  } finally {
    clearTimeout(timer);
  }
}
