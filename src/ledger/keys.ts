// The Redis key layout of the tool, in one place. Every key starts with the configured prefix, so that
// tests and several deployments can share one Redis without seeing each other.

/** BullMQ queue that carries every receipt row of every run: one rate limit per API key, shared by all runs. */
export const RECEIPTS_QUEUE = 'receipts';

export interface RunKeys {
  /** hash: counters and timestamps of the run */
  meta: string;
  /** hash: fingerprint → location of the first row that had it (dedupe within the run) */
  seen: string;
  /** hash: fingerprint → outcome JSON */
  outcomes: string;
  /** hash: location → rejection JSON */
  rejected: string;
  /** hash: location → duplicate JSON */
  duplicates: string;
  /** hash: source name → its number, which outcomes and `seen` store instead of the name */
  sources: string;
  /** hash: fingerprint → place of a row skipped because an earlier run migrated it */
  skipped: string;
  /** list: "<fp> <stored outcome>" of outcomes replaced by a retry, oldest first */
  history: string;
  /** list: the 20 most recent failures (JSON), newest first */
  errors: string;
  /** hash: "<bucket start>:<r|l|s|f>" → requests, rate-limited answers, successes, failures in that bucket */
  timeline: string;
  /** hash: latency bucket index → requests */
  latency: string;
  /** list: mismatches found by the last `verify` pass (JSON) */
  verifyMismatches: string;
}

export function runKeys(prefix: string, runId: string): RunKeys {
  const base = `${prefix}:run:${runId}`;
  return {
    meta: `${base}:meta`,
    seen: `${base}:seen`,
    outcomes: `${base}:out`,
    rejected: `${base}:rej`,
    duplicates: `${base}:dup`,
    sources: `${base}:src`,
    skipped: `${base}:skip`,
    history: `${base}:hist`,
    errors: `${base}:err`,
    timeline: `${base}:tl`,
    latency: `${base}:lat`,
    verifyMismatches: `${base}:vmm`,
  };
}

/** sorted set of run ids by start time */
export const runsIndexKey = (prefix: string): string => `${prefix}:runs`;

/** set: fingerprints that succeeded in any run, so nightly backfills skip what is already migrated */
export const migratedKey = (prefix: string): string => `${prefix}:migrated`;

/** string: why the queue was paused by a fatal API answer (JSON), absent when nothing is wrong */
export const fatalKey = (prefix: string): string => `${prefix}:fatal`;

/** string: which worker holds the in-flight request of one app_user_id */
export const userLockKey = (prefix: string, userHash: string): string => `${prefix}:lock:user:${userHash}`;

/** A row's place in its input: source name and 1-based line. */
export function locationOf(source: string, line: number): string {
  return `${source}#${line}`;
}

/** BullMQ job id of a row: unique per run and fingerprint, so re-adding the same row is a no-op. */
export function jobIdOf(runId: string, fp: string): string {
  return `${runId}.${fp}`;
}
