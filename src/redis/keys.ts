// Every Redis key and hash-field name of the tool, in one place (as bullmq's QueueKeys): whoever changes the
// layout, e.g. to give keys Redis Cluster hash tags, changes it here. Every key starts with the configured
// prefix, so tests and several deployments can share one Redis without seeing each other. BullMQ's own keys
// stay BullMQ's: only the queue names and the prefix come from here.
//
// Lua scripts (src/redis/scripts/*.lua) get their keys through KEYS, built here; the hash-field names they
// write are local constants at the top of each script, annotated `-- META.<name>`, and a test checks that each
// annotation matches this module.

/** BullMQ queues (under the prefix). */
export const QUEUES = {
  /** every receipt row of every run: one rate limit per API key, shared by all runs */
  receipts: 'receipts',
  /** scheduled runs: each schedule is a BullMQ job scheduler on this queue, each firing one job */
  runs: 'runs',
} as const;

export const RECEIPTS_QUEUE = QUEUES.receipts;
export const RUNS_QUEUE = QUEUES.runs;

/** The keys of one run's ledger. */
export interface RunKeys {
  /** hash: counters and timestamps of the run (fields: META) */
  meta: string;
  /** hash: fingerprint → place of the first row that had it (dedupe within the run) */
  seen: string;
  /** hash: fingerprint → outcome (ledger/outcomeCodec.ts) */
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
  /** hash: timelineField(bucket, kind) → count in that bucket */
  timeline: string;
  /** hash: latency bucket index → requests */
  latency: string;
  /** list: mismatches found by the last `verify` pass (JSON) */
  verifyMismatches: string;
}

/** Key names under one prefix. Cheap to build: construct one wherever a prefix is at hand. */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  run(runId: string): RunKeys {
    const base = `${this.prefix}:run:${runId}`;
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

  /** sorted set: run ids by start time */
  get runs(): string {
    return `${this.prefix}:runs`;
  }

  /** set: fingerprints that succeeded in any run, so nightly backfills skip what is already migrated */
  get migrated(): string {
    return `${this.prefix}:migrated`;
  }

  /** string: why the queue was paused by a fatal API answer (JSON), absent when nothing is wrong */
  get fatal(): string {
    return `${this.prefix}:fatal`;
  }

  /** string: which worker holds the in-flight request of one app_user_id (hashed: ids are personal data) */
  userLock(userHash: string): string {
    return `${this.prefix}:lock:user:${userHash}`;
  }

  /** hash: the request rate shared by every worker process (fields: RATE) */
  get rate(): string {
    return `${this.prefix}:rate`;
  }

  /** string: the pacer's next free slot (ms, Redis clock) */
  get pace(): string {
    return `${this.prefix}:pace`;
  }
}

/** What `meta` holds in its `ingest` field. */
export const INGEST_STATE = { running: 'running', done: 'done' } as const;

const STATUS_FIELD = 'status:';
const PROGRESS_FIELD = 'progress:';

/** Fields of a run's `meta` hash. */
export const META = {
  runId: 'run_id',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  /** INGEST_STATE; absent before the first ingest */
  ingest: 'ingest',
  rowsRead: 'rows_read',
  rowsRejected: 'rows_rejected',
  rowsDuplicate: 'rows_duplicate',
  rowsQueued: 'rows_queued',
  rowsSucceeded: 'rows_succeeded',
  rowsFailed: 'rows_failed',
  rowsAlreadyMigrated: 'rows_already_migrated',
  requestsSent: 'requests_sent',
  /** retry passes that re-opened at least one row */
  retries: 'retries',
  /** how many sources the run has numbered (RunKeys.sources) */
  sourceCount: 'source_count',
  lastOutcomeAt: 'last_outcome_at',
  /** the last `verify` pass's summary (JSON) */
  verify: 'verify',
  /** the line up to which the source with this number is ingested */
  progress: (sourceId: number): string => `${PROGRESS_FIELD}${sourceId}`,
  /** requests answered with this HTTP status (or network error name) */
  status: (status: string): string => `${STATUS_FIELD}${status}`,
  /** the status of a `status:<x>` field, undefined for any other field */
  statusOf: (field: string): string | undefined => (field.startsWith(STATUS_FIELD) ? field.slice(STATUS_FIELD.length) : undefined),
} as const;

/** What a timeline field counts. `succeeded`/`failed` equal the outcome status codes (ledger/outcomeCodec.ts). */
export const TIMELINE = { requests: 'r', rateLimited: 'l', succeeded: 's', failed: 'f' } as const;
export type TimelineKind = (typeof TIMELINE)[keyof typeof TIMELINE];

/** Field of a run's `timeline` hash: one count per bucket start (epoch seconds) and kind. */
export function timelineField(bucketStart: number, kind: string): string {
  return `${bucketStart}:${kind}`;
}

/** The bucket start and kind of a timeline field. */
export function parseTimelineField(field: string): { t: number; kind: string } {
  const colon = field.indexOf(':');
  return { t: Number(field.slice(0, colon)), kind: field.slice(colon + 1) };
}

/** Field of a run's `latency` hash. */
export function latencyField(bucketIndex: number): string {
  return String(bucketIndex);
}

/** Fields of the shared rate hash (RedisKeys.rate). */
export const RATE = {
  rate: 'rate',
  ceiling: 'ceiling',
  last429: 'last_429',
  lastDecrease: 'last_decrease',
  lastChange: 'last_change',
} as const;

/** A row's place in its input, as rejection and duplicate records are keyed: source name and 1-based line. */
export function locationOf(source: string, line: number): string {
  return `${source}#${line}`;
}

/** BullMQ job id of a row: unique per run and fingerprint, so re-adding the same row is a no-op. */
export function jobIdOf(runId: string, fp: string): string {
  return `${runId}.${fp}`;
}
