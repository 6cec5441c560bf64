// Every Redis key and hash-field name of the tool, in one place (as bullmq's QueueKeys): whoever changes the
// layout changes it here. Every key starts with the configured prefix (the ledger's with the prefix without
// hash-tag braces: see RedisKeys), so tests and several deployments can share one Redis without seeing each
// other. BullMQ's own keys
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

/** Whether a key (or prefix) holds a hash tag: a `{…}` with something between the braces, as Redis reads it. */
export function hasHashTag(key: string): boolean {
  const open = key.indexOf('{');
  if (open === -1) return false;
  const close = key.indexOf('}', open + 1);
  return close > open + 1;
}

/**
 * The prefix BullMQ's queues get. BullMQ's scripts touch several keys of a queue at once, which a Redis Cluster
 * only allows within one slot: there the user's prefix becomes one hash tag (`rcm` → `{rcm}`), so that each
 * queue lives on one master; a prefix that already holds a tag is kept as it is, and one node needs none.
 * The tool's own keys spread over the cluster whatever the prefix (see RedisKeys).
 */
export function bullmqPrefix(prefix: string, onCluster: boolean): string {
  return onCluster && !hasHashTag(prefix) ? `{${prefix}}` : prefix;
}

/**
 * Hash tags of the ledger's shards. A run's rows, and the cross-run index, are spread over SHARDS hash tags by
 * the first byte of each row's token fingerprint, so that a Redis Cluster's masters share a large run; every
 * script touches the keys of one shard only (one slot). Each tag is picked so that shard n hashes into slots
 * [n × 1024, (n + 1) × 1024): a cluster whose masters split the 16,384 slots evenly, as `redis-cli --cluster
 * create` does, gets an even share of shards.
 */
export const SHARDS = 16;
const SLOTS = 16384;

/** CRC16/XMODEM, the hash Redis Cluster maps keys to slots with. */
function crc16(text: string): number {
  let crc = 0;
  for (const byte of Buffer.from(text, 'utf8')) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Redis Cluster slot of a key (its hash tag's, when it has one). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % SLOTS;
  }
  return crc16(key) % SLOTS;
}

export const SHARD_TAGS: readonly string[] = Array.from({ length: SHARDS }, (_, n) => {
  const width = SLOTS / SHARDS;
  for (let k = 0; ; k++) {
    const tag = `${n}.${k}`;
    if (Math.floor(crc16(tag) / width) === n) return tag;
  }
});

/** A run's own keys (one hash tag per run): what is not per row. */
export interface RunKeys {
  /** hash: timestamps, ingest state and progress of the run (fields: META); its counters live in the shards */
  meta: string;
  /** hash: source name → its number, which records store instead of the name */
  sources: string;
  /** hash: repeated string (product and entitlement ids) → its number in this run's records */
  dict: string;
  /** list: mismatches found by the last `verify` pass (JSON) */
  verifyMismatches: string;
  /** hash: location of a conflicting row → its token, masked, for conflicts.csv (ledger/conflicts.ts) */
  conflictTokens: string;
  /** hash: source name → what it was when first read and how (JSON, ingest/sourceRecord.ts), to read a row again */
  sourceCatalog: string;
}

/** One shard of a run's ledger: the rows whose token fingerprint falls in it, and their counters. */
export interface RunShardKeys {
  /** hash: counters of this shard's rows and requests (fields: META), summed over the shards on read; plus the growth state of the row table (TABLE) */
  counters: string;
  /** prefix of the row table's buckets, `<buckets><i>`: hash record key → row record (ledger/rowRecord.ts), a listpack each */
  buckets: string;
  /** hash: record key → row record, for the few records too long for a bucket */
  wide: string;
  /** hash: location → rejection JSON (rejections go to shard line mod SHARDS) */
  rejected: string;
  /** hash: location → duplicate JSON (shard line mod SHARDS) */
  duplicates: string;
  /** hash: place of a row → its conflict (ledger/rowRecord.ts) */
  conflicts: string;
  /**
   * hash: growth state (TABLE) of the superseded rows' table, a table like the row table's: the place of a
   * superseded App Store row → its carrier's place (ledger/rowRecord.ts encodeSuperseded; the row's user is read
   * again from its source, as a failed row's cells are: ingest/reread.ts). Shard line mod SHARDS for a row the
   * ingest's survey superseded (recordSuperseded-3.lua); the shard of its record key for a row given by a
   * transaction id that the workers superseded after its lookup (supersedeQueued-4.lua).
   */
  superseded: string;
  /** prefix of the superseded rows' buckets */
  supersededBuckets: string;
  /** hash: superseded rows' records too long for a bucket (the table's; a carrier's place never is) */
  supersededWide: string;
  /**
   * hash: growth state of the run's purchase claims in this shard (TABLE; a table like the purchase index's:
   * App Store purchase key → the claim of the row given by a transaction id that is posting it, in the purchase
   * index's value form: claimPurchase-3.lua, ledger/lookupConflicts.ts). Keyed by purchase, so it shares its
   * shard with the purchase index entry of the same purchase.
   */
  claims: string;
  /** prefix of the purchase claims' buckets */
  claimBuckets: string;
  /** hash: purchase claims too long for a bucket (never, values are ~20 bytes; the table needs a name) */
  claimWide: string;
  /** list: history entries (ledger/rowRecord.ts: key, then the replaced record) of outcomes replaced by a later one (a retry), oldest first */
  history: string;
  /** list: the 20 most recent failures of this shard (JSON), newest first */
  errors: string;
  /** hash: timelineField(bucket, kind) → count in that bucket */
  timeline: string;
  /** hash: latency bucket index → requests */
  latency: string;
}

/** One shard of the cross-run index: token fingerprint → who migrated it, with which payload, in which run. */
export interface IndexShardKeys {
  /** hash: growth state of the index table (TABLE) */
  state: string;
  /** prefix of the index table's buckets, `<buckets><i>` */
  buckets: string;
  /** hash: growth state of the purchase index (App Store purchase key → who posted it last: ledger/purchaseIndex.ts) */
  purchaseState: string;
  /** prefix of the purchase index's buckets */
  purchaseBuckets: string;
  /** hash: purchase index values too long for a bucket (never, values are ~20 bytes; the table needs a name) */
  purchaseWide: string;
}

/**
 * Key names under one prefix. Cheap to build: construct one wherever a prefix is at hand.
 *
 * The ledger's keys start with the prefix without braces (`rcm` for `rcm` and `{rcm}` alike), followed by a
 * hash tag of their own: `rcm:run:{<run>}:…` for a run's own keys, `rcm:{<shard tag>}:run:<run>:…` and
 * `rcm:{<shard tag>}:ix:…` for its rows and the cross-run index. A prefix that is one hash tag (what BullMQ
 * needs on a cluster) would otherwise put every key in one slot.
 */
export class RedisKeys {
  /** the prefix without hash-tag braces, which the ledger's keys start with */
  readonly base: string;

  constructor(readonly prefix: string) {
    this.base = prefix.replace(/[{}]/g, '');
  }

  run(runId: string): RunKeys {
    const home = `${this.base}:run:{${runId}}`;
    return {
      meta: `${home}:meta`,
      sources: `${home}:src`,
      dict: `${home}:dict`,
      verifyMismatches: `${home}:vmm`,
      conflictTokens: `${home}:ctok`,
      sourceCatalog: `${home}:srccat`,
    };
  }

  runShard(runId: string, shard: number): RunShardKeys {
    const base = `${this.base}:{${SHARD_TAGS[shard] as string}}:run:${runId}`;
    return {
      counters: `${base}:c`,
      buckets: `${base}:b:`,
      wide: `${base}:w`,
      rejected: `${base}:rej`,
      duplicates: `${base}:dup`,
      conflicts: `${base}:conf`,
      superseded: `${base}:sup`,
      supersededBuckets: `${base}:sb:`,
      supersededWide: `${base}:sw`,
      claims: `${base}:pcs`,
      claimBuckets: `${base}:pcb:`,
      claimWide: `${base}:pcw`,
      history: `${base}:hist`,
      errors: `${base}:err`,
      timeline: `${base}:tl`,
      latency: `${base}:lat`,
    };
  }

  index(shard: number): IndexShardKeys {
    const base = `${this.base}:{${SHARD_TAGS[shard] as string}}:ix`;
    return { state: `${base}:state`, buckets: `${base}:b:`, purchaseState: `${base}:pstate`, purchaseBuckets: `${base}:pb:`, purchaseWide: `${base}:pw` };
  }

  /** sorted set: run ids by start time */
  get runs(): string {
    return `${this.prefix}:runs`;
  }

  /** sorted set: the ledgers of plans in progress by start time (commands/plan.ts), so a killed plan's are swept */
  get plans(): string {
    return `${this.prefix}:plans`;
  }

  /** hash: `r:<run id>` → the run's number, `n:<number>` → its run id, and `count`: the cross-run index stores the number instead of the id (runNumber-1.lua) */
  get runNumbers(): string {
    return `${this.prefix}:runno`;
  }

  /** string: why the queue was paused by a fatal API answer (JSON), absent when nothing is wrong */
  get fatal(): string {
    return `${this.prefix}:fatal`;
  }

  /** hash: `<platform>:<key fingerprint>` → why that key stopped that platform's rows (JSON, queue/keyStops.ts) */
  get keyStops(): string {
    return `${this.prefix}:fatal:keys`;
  }

  /** set: `<platform>:<row fingerprint>` of a run's rows parked while their key is stopped (queue/keyStops.ts) */
  parked(runId: string): string {
    return `${this.prefix}:parked:${runId}`;
  }

  /** set: `<platform>:<run id>` of every run with parked rows of that platform */
  get parkedRuns(): string {
    return `${this.prefix}:parked`;
  }

  /** string: which worker holds the in-flight request of one app_user_id (hashed: ids are personal data) */
  userLock(userHash: string): string {
    return `${this.prefix}:lock:user:${userHash}`;
  }

  /**
   * hash: a run's rows given by a transaction id of one user, while their lookups are compared (one POST per
   * purchase: ledger/lookupGroups.ts; fields: LOOKUP_GROUP). `userKey`: a hash of the App User ID, never the id.
   */
  lookupGroup(runId: string, userKey: string): string {
    return `${this.prefix}:lookup:group:${runId}:${userKey}`;
  }

  /** set: job ids of rows waiting, after their lookup, for the other rows of their lookup group (ledger/lookupGroups.ts) */
  get lookupWaiting(): string {
    return `${this.prefix}:lookup:waiting`;
  }

  /** string: a live worker process's heartbeat, expiring unless renewed (workers/inFlightRows.ts) */
  workerBeat(workerId: string): string {
    return `${this.prefix}:worker:${workerId}`;
  }

  /**
   * hash: a row whose request is in flight, and how many worker processes died with it in flight (fields:
   * FLIGHT; workers/inFlightRows.ts). Exists only while the row is unfinished.
   */
  inFlight(jobId: string): string {
    return `${this.prefix}:flight:${jobId}`;
  }

  /** hash: the request rate shared by every worker process, for the default scope (fields: RATE) */
  get rate(): string {
    return `${this.prefix}:rate`;
  }

  /** hash: the pacer's schedule and request log, for the default scope (fields: PACE) */
  get pace(): string {
    return `${this.prefix}:pace`;
  }

  /** The learned rate of one limit scope (workers/rate/sharedRate.ts): the default scope keeps the keys above. */
  rateOf(scope: string): string {
    return scope === DEFAULT_RATE_SCOPE ? this.rate : `${this.prefix}:rate:${checkRateScope(scope)}`;
  }

  /** The pacer of one limit scope. */
  paceOf(scope: string): string {
    return scope === DEFAULT_RATE_SCOPE ? this.pace : `${this.prefix}:pace:${checkRateScope(scope)}`;
  }
}

/** What `meta` holds in its `ingest` field. */
export const INGEST_STATE = { running: 'running', done: 'done' } as const;

const STATUS_FIELD = 'status:';
const PROGRESS_FIELD = 'progress:';

/** Fields of a run's `meta` hash and of its shards' `counters` (the row and request counters, summed on read). */
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
  /** rows queued because their payload changed since an earlier run migrated their token (a subset of rows_queued) */
  rowsUpdated: 'rows_updated',
  /** rows whose token another user already has, in this run or an earlier one (held or sent, see rows_held) */
  rowsConflict: 'rows_conflict',
  /** conflicting rows held back, not sent (their own outcome class, like a duplicate) */
  rowsHeld: 'rows_held',
  /** App Store rows not sent: a newer receipt of the same user carries every purchase they carry */
  rowsSuperseded: 'rows_superseded',
  requestsSent: 'requests_sent',
  /** retry passes that re-opened at least one row */
  retries: 'retries',
  /** how many sources the run has numbered (RunKeys.sources) */
  sourceCount: 'source_count',
  lastOutcomeAt: 'last_outcome_at',
  /** the last `verify` pass's summary (JSON) */
  verify: 'verify',
  /** what the last ingest's survey counted of the App Store rows (JSON: summary.json's `receipts`) */
  receipts: 'receipts',
  /**
   * what the run's latest ingest does with a conflict ('hold' or 'send', --on-conflict): the workers read it for a
   * row given by a transaction id whose looked-up purchase another user holds (workers/lookupConflicts.ts)
   */
  onConflict: 'on_conflict',
  /** a canary's limit and rows sent (JSON, session/canary.ts), until an ingest of the run reads every source */
  canary: 'canary',
  /** '1' once a row of the run was looked up in the App Store Server API: `status` and the bar then show the lookups' rate */
  lookups: 'lookups',
  /** the line up to which the source with this number is ingested */
  progress: (sourceId: number): string => `${PROGRESS_FIELD}${sourceId}`,
  /** what the source with this number was when it was ingested (JSON: size and mtime, or ETag), to tell it changed since */
  /** requests answered with this HTTP status (or network error name) */
  status: (status: string): string => `${STATUS_FIELD}${status}`,
  /** the status of a `status:<x>` field, undefined for any other field */
  statusOf: (field: string): string | undefined => (field.startsWith(STATUS_FIELD) ? field.slice(STATUS_FIELD.length) : undefined),
} as const;

/**
 * Fields of a table's growth state (a shard's `counters` for a run's rows, `state` for the index): the table is
 * a linear hash (src/redis/scripts/includes/table.lua), `level` and `split` say how many buckets it has.
 */
export const TABLE = {
  level: 'lh:level',
  split: 'lh:split',
  /** records in the table */
  records: 'lh:n',
} as const;

/**
 * What a timeline field counts. `succeeded`/`failed` equal the record kinds (ledger/rowRecord.ts RECORD). `rate` is
 * not a count: the request rate the workers paced at in the bucket (RunLedger.recordRate), the last one written;
 * `lookupRate` likewise the App Store Server API lookups' rate (scope 'apple'), only in buckets with lookups.
 */
export const TIMELINE = { requests: 'r', rateLimited: 'l', succeeded: 's', failed: 'f', rate: 'q', lookupRate: 'a' } as const;

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

/** The limit scope of a run whose keys all share one limit (the default); another scope names a limit of its own. */
export const DEFAULT_RATE_SCOPE = 'all';

/** The limit scope of App Store Server API lookups (workers/appleLookup.ts): Apple's limit is not RevenueCat's. */
export const APPLE_RATE_SCOPE = 'apple';

/** A scope goes into key names: a short plain name (a platform, a key's hash), never a secret. */
export function checkRateScope(scope: string): string {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(scope)) throw new Error(`rate scope "${scope}": use 1-64 letters, digits, _ . or -`);
  return scope;
}

/** Fields of the shared rate hash (RedisKeys.rateOf): workers/rate/discovery.ts's RateState. */
export const RATE = {
  rate: 'rate',
  phase: 'phase',
  window: 'window',
  lo: 'lo',
  probeFrom: 'probe_from',
  probeAt: 'probe_at',
  nextProbe: 'next_probe',
  gap: 'gap',
  step: 'step',
  cut: 'cut',
  measuredLast: 'measured_last',
  spill: 'spill',
  chainFrom: 'chain_from',
  wmax: 'wmax',
  wmaxUntil: 'wmax_until',
  lastDecrease: 'last_decrease',
  last429: 'last_429',
  resumeAt: 'resume_at',
  lastChange: 'last_change',
  learnedAt: 'learned_at',
  announced: 'announced',
  announcedAt: 'announced_at',
  ceiling: 'ceiling',
  configured: 'configured',
  edges: 'edges',
  /** bumped by every write (rateUpdate-1.lua): a write based on an older read is refused */
  version: 'version',
} as const;

/** Fields of a row's in-flight hash (RedisKeys.inFlight, inFlightBegin-1.lua, inFlightEnd-1.lua). */
export const FLIGHT = {
  /** the worker process whose request for the row is in flight (absent between requests) */
  worker: 'w',
  /** worker processes that stopped (killed, hung) while the row's request was in flight */
  deaths: 'd',
} as const;

/**
 * Fields of a lookup group hash (RedisKeys.lookupGroup, lookupGroup-1.lua): the group's size (its user's rows
 * given by a transaction id, from the ingest's survey), how many of them have a result and how many decided, and
 * per row (by its place, locationOf) its result and its decided mark.
 */
export const LOOKUP_GROUP = {
  size: '#n',
  results: '#r',
  decided: '#d',
  /** prefix of a row's result field: `r:<place>` → what its lookup found (ledger/lookupGroups.ts GroupValue) */
  result: 'r:',
  /** prefix of a row's decided mark: `d:<place>` */
  decidedMark: 'd:',
} as const;

/** Fields of the pacer hash (RedisKeys.paceOf) and the shape of its request log (pace-1.lua). */
export const PACE = {
  next: 'next',
  hold: 'hold',
  /** the send time of the last refused request (a fixed window's start lies between it and the next admitted one) */
  lastRefused: 'lref',
  /** '1' while the bracket the last refusal opened is not resolved yet; how long its answers take to be in (ms) */
  bracketOpen: 'lopen',
  settle: 'lsettle',
  /** prefixes of the two rings' fields: f<slot>, c<slot> */
  fine: 'f',
  coarse: 'c',
  fineMs: 10,
  fineSlots: 2000,
  /** buckets of the past a ring answers for (the rest hold slots booked ahead, up to the pacer's max wait) */
  fineHistory: 1000,
  coarseMs: 1000,
  coarseSlots: 100,
  coarseHistory: 80,
} as const;

/** A row's place in its input, as rejection and duplicate records are keyed: source name and 1-based line. */
export function locationOf(source: string, line: number): string {
  return `${source}#${line}`;
}

/** BullMQ job id of a row: unique per run and fingerprint, so re-adding the same row is a no-op. */
export function jobIdOf(runId: string, fp: string): string {
  return `${runId}.${fp}`;
}
