// Starts the BullMQ worker that sends rows, with the queue-wide rate limit, retry strategy and a safety net
// that gives every row an outcome even when its job fails for a reason the processor did not foresee.
import { ErrorCode, type ConnectionOptions, type Job, type Worker } from 'bullmq';
import { endsWithin } from '../deadline.js';
import { isCluster, type RedisClient } from '../redis/connection.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { RECEIPTS_QUEUE, bullmqPrefix } from '../redis/keys.js';
import { MemoryPressure } from '../redis/memoryPressure.js';
import { RunLedger } from '../ledger/runLedger.js';
import type { FatalStop } from '../queue/fatalStop.js';
import { holdJobLock } from '../queue/jobLock.js';
import { BACKOFF_TYPE, type ReceiptsQueue } from '../queue/receiptsQueue.js';
import type { RevenueCatClient } from '../revenuecat/client.js';
import type { KeyRing } from '../revenuecat/keyRing.js';
import type { ReceiptJobData } from '../types.js';
import { retryDelay } from './backoff.js';
import { outcomeOf } from './outcome.js';
import { createProcessor } from './processor.js';
import { JobWorker } from './jobWorker.js';
import { UserLock } from './userLock.js';
import { InFlightRows } from './inFlightRows.js';
import { testPoisonHook } from './testPoison.js';
import type { RateController } from './rateController.js';
import { concurrencyFor, queueLimiterFor } from './rate/limiter.js';
import { ScopedRates } from './scopedRates.js';
import type { AppleLookups } from './appleLookup.js';
import type { WorkerReport } from './workerReport.js';

export interface ReceiptWorkerDeps {
  config: Config;
  connection: ConnectionOptions;
  redis: RedisClient;
  queue: ReceiptsQueue;
  fatal: FatalStop;
  client: Pick<RevenueCatClient, 'postReceipt'>;
  /** which platform's rows the client sends with which key (the keys stay in the client) */
  keys: KeyRing;
  logger: Logger;
  /** told of each answer, outcome and rate change (the process's metrics implement it) */
  report?: WorkerReport;
  /** the App Store Server API lookups of rows given by a transaction id (appleLookup.ts); absent: rows post as they are */
  appleLookups?: AppleLookups;
  /** where the test-only poison hook is looked up (testPoison.ts; default process.env): inactive unless NODE_ENV=test */
  env?: NodeJS.ProcessEnv;
}

export interface ReceiptWorker {
  worker: Worker<ReceiptJobData, void, string>;
  /** the run's rate controller (with rateLimitScope 'key': the first key's; every key's is in `rates`) */
  rate: RateController;
  /** one controller per limit scope (rateScope.ts): the run's alone, or one per key */
  rates: RateController[];
  /**
   * Waits for in-flight requests up to the deadline, then forces the close (their jobs return as stalled). The
   * deadline bounds the whole close, Redis answering or not.
   */
  close(deadlineMs?: number): Promise<{ forced: boolean }>;
}

/** A request's own time besides its answer: the user's lock, the ledger's writes (a few Redis round trips). */
const REQUEST_OVERHEAD_MS = 15;
/** "latency caps the rate" at most this often: the check runs every second. */
const CAPPED_WARN_EVERY_MS = 60_000;
/**
 * BullMQ's maxStalledCount: never reached. BullMQ would count a stall against the job whichever worker died and
 * fail it past the limit; here a stall costs a row something only if it was in flight at the death, and the
 * poison-row rule (inFlightRows.ts, config poisonStarts) is what fails a row that keeps killing its workers.
 */
const NEVER_FAIL_STALLED = Number.MAX_SAFE_INTEGER;
/** How long a clean close waits for Redis to delete this process's heartbeat (it expires on its own anyway). */
const HEARTBEAT_DELETE_MS = 2000;

export async function startReceiptWorker(deps: ReceiptWorkerDeps): Promise<ReceiptWorker> {
  const { config, logger } = deps;
  // No --rate: the limit is discovered (rateController.ts); with one, it is the start and the ceiling. One
  // controller and pacer for the run, or one per key (rateLimitScope 'key'); BullMQ serves them all at their sum.
  const rates = new ScopedRates(deps.redis, config, deps.keys, logger);
  const initial = await rates.start();
  // Seconds per request, smoothed (its answer's time and a little for the lock and the ledger): with the rate it
  // tells how many requests must be in flight. Not a job's whole time, which includes its wait for a pacer slot:
  // that would feed back (more jobs in flight wait longer for their slots, which asks for more jobs) until every
  // job holds a slot booked seconds ahead, and a new rate (a probe) takes seconds to apply.
  let jobSeconds: number | undefined;
  // Redis at maxmemory: rows wait in the worker with their answers until Redis accepts writes; one warning.
  const memory = new MemoryPressure({
    logger,
    role: 'workers',
    advice: "free memory or raise maxmemory; each row's answer is kept here and written once Redis accepts writes",
    redis: () => deps.redis,
    // tried again often enough that a held job's lock (kept with holdLock below) never lapses between tries
    maxDelayMs: Math.min(2000, Math.floor(config.lockDurationMs / 3)),
  });
  const ledgers = new Map<string, RunLedger>();
  // When this process last sent a row of each run: the runs whose timeline gets the rate (report.html).
  const lastSent = new Map<string, number>();
  // When this process last looked a row of each run up (App Store Server API): those runs get the lookups' rate too.
  const lastLookedUp = new Map<string, number>();
  const ledgerOf = (runId: string): RunLedger => {
    let ledger = ledgers.get(runId);
    if (!ledger) {
      ledger = new RunLedger(deps.redis, config.prefix, runId);
      ledgers.set(runId, ledger);
    }
    return ledger;
  };
  const ledgerFor = (runId: string): RunLedger => {
    lastSent.set(runId, Date.now());
    return ledgerOf(runId);
  };
  // Stops of one key (queue/keyStops.ts) made by any process apply here within FOLLOW_MS.
  await deps.fatal.keys.refresh();
  const unfollow = deps.fatal.keys.follow(deps.keys, (err) => logger.warn({ err }, 'could not read the stopped keys'));
  // This process's heartbeat, and the rows whose requests it has in flight (inFlightRows.ts).
  const inFlight = new InFlightRows(deps.redis, config.prefix, { lockDurationMs: config.lockDurationMs, poisonStarts: config.poisonStarts });
  await inFlight.start((err) => logger.warn({ err }, 'could not renew this worker process heartbeat'));
  const beforeSend = testPoisonHook(deps.env ?? process.env);
  if (beforeSend) logger.warn('test hook active: this process kills itself on the poison row (NODE_ENV=test, RC_MIGRATE_TEST_POISON_TOKEN)');
  const posting = createProcessor({
    client: deps.client,
    keys: deps.keys,
    queue: deps.queue,
    fatal: deps.fatal,
    userLock: new UserLock(deps.redis, config.prefix, config.userLockMs),
    ledgerFor,
    logger,
    maxAttempts: config.maxAttempts,
    rateLimitDefaultWaitMs: config.rateLimitDefaultWaitMs,
    userBusyDelayMs: config.userBusyDelayMs,
    userLockWaitMs: config.userLockWaitMs,
    // The pacer's schedule is booked at least its max wait ahead: the job comes back in about that time.
    pacerFullDelayMs: Math.ceil(config.pacerMaxWaitMs / 2),
    inFlight,
    ...(beforeSend ? { beforeSend } : {}),
    expiryToleranceMs: config.expiryToleranceMs,
    pacer: rates.pacer,
    pacerFor: (key) => rates.pacerFor(key),
    memory,
    holdLock: (job, token) => holdJobLock(deps.redis, deps.queue, job.id, token, config.lockDurationMs),
    ...(deps.report ? { report: deps.report } : {}),
    observe: async (result, verdict, key) => {
      const s = (result.durationMs + REQUEST_OVERHEAD_MS) / 1000;
      jobSeconds = jobSeconds === undefined ? s : jobSeconds * 0.9 + s * 0.1;
      // A 429 of the limit also holds the pacer's schedule for its wait (pace-1.lua), which requests already
      // waiting for a slot see before they leave (pacer.ts).
      // Each answer teaches its key's scope (the run's, with one limit for every key).
      return rates.controllerFor(key).observe(result, verdict);
    },
  });
  // Rows given by a transaction id are looked up first (appleLookup.ts), then posted the processor's way.
  const processor = deps.appleLookups
    ? deps.appleLookups.wrap(posting, {
        ledgerFor,
        logger,
        stops: deps.fatal.keys,
        queue: deps.queue,
        ...(deps.report ? { report: deps.report } : {}),
        // A lookup lengthens its row's work: added at the answers' smoothing weight, the request time tends to
        // the POST's plus the lookups' share (R + f·L), which is what concurrency must cover.
        onLookup: (ms, runId) => {
          if (jobSeconds !== undefined) jobSeconds += (0.1 * ms) / 1000;
          // The run's first lookup here marks it (status and the bar show the lookups' rate) and samples the rate
          // at once: a short run may end before the next tick.
          if (!lastLookedUp.has(runId)) recordLookupRate(runId, true);
          lastLookedUp.set(runId, Date.now());
        },
      })
    : posting;
  // The rows this process has in its processor: what a forced close leaves to their locks.
  let inHand = 0;
  const counted = async (...args: Parameters<typeof processor>): Promise<void> => {
    inHand++;
    try {
      await processor(...args);
    } finally {
      inHand--;
    }
  };
  // Once a close is given up on, the worker's errors are those of what it left behind (its locks, its connection).
  let abandoned = false;
  const worker = new JobWorker<ReceiptJobData, void, string>(RECEIPTS_QUEUE, counted, {
    connection: deps.connection,
    prefix: bullmqPrefix(config.prefix, isCluster(deps.connection)),
    concurrency: config.concurrency,
    limiter: queueLimiterFor(initial),
    // How many times a row may be started (rate-limited or its user busy) before it fails for good.
    maxStartedAttempts: config.maxStarts,
    maxStalledCount: NEVER_FAIL_STALLED,
    // How soon the rows of a killed worker come back (config.ts): BullMQ's 30 s defaults unless configured.
    lockDuration: config.lockDurationMs,
    stalledInterval: config.stalledIntervalMs,
    maximumRateLimitDelay: Math.max(30_000, config.rateLimitDefaultWaitMs),
    settings: {
      backoffStrategy: (attemptsMade: number, type?: string, err?: Error) =>
        type === BACKOFF_TYPE ? retryDelay(attemptsMade, err, { baseMs: config.backoffBaseMs, maxMs: config.backoffMaxMs }) : config.backoffBaseMs,
    },
  });

  worker.on('failed', (job: Job<ReceiptJobData, void, string> | undefined, err: Error) => {
    if (!job) return;
    const final = err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) return;
    const data = job.data;
    if (job.id !== undefined) inFlight.forget(job.id).catch((e: unknown) => logger.debug({ err: e }, 'could not clear a failed row in flight; it expires on its own'));
    // Only if the processor wrote nothing: this catches bugs, exhausted starts and rows stalled too often.
    const outcome = outcomeOf(job, {
      status: 'failed',
      reason: err.name === 'UnrecoverableError' ? 'too_many_starts' : 'job_failed',
      message: err.message,
      attempts: job.attemptsMade,
    });
    // BullMQ still fails and removes jobs at maxmemory: this record then waits until Redis accepts it.
    void memory
      .retry(() => ledgerFor(data.run).recordOutcome(outcome, { onlyIfAbsent: true }))
      .catch((e: unknown) => logger.error({ err: e, run: data.run, line: data.line }, 'could not record a failed job'));
  });
  // BullMQ's own writes meet maxmemory too and it retries them itself: they count towards the one warning.
  worker.on('error', (err) => {
    if (abandoned) {
      logger.debug({ err }, 'worker error after its close was given up on');
      return;
    }
    if (memory.noteError(err)) return;
    // A job whose lock this worker lost (it expired during a Redis failover or a long pause, and the stalled
    // check may hand the job to another worker): expected, one line each. The row's answer is in the ledger
    // already, or will be, and the ledger counts it once whoever answers.
    if (isLostJobLock(err)) logger.warn({ reason: err.message }, 'job lock lost (e.g. in a Redis failover): the row is counted once whichever worker answers');
    else logger.error({ err }, 'worker error');
  });

  // BullMQ reads the limiter options on every fetch, so a new shared rate takes effect at the next job.
  // The pacers follow their own scope's rate (scopedRates.ts).
  deps.report?.rateChanged(initial);
  rates.onChange((total) => {
    worker.opts.limiter = queueLimiterFor(total);
    deps.report?.rateChanged(total);
  });
  let cappedWarnedAt = -Infinity;
  const resize = (): void => {
    if (jobSeconds === undefined) return;
    const total = rates.total;
    const wanted = concurrencyFor(total, jobSeconds * 1000, config.concurrency);
    if (wanted !== worker.concurrency) {
      logger.debug({ concurrency: wanted, rate: total, jobMs: Math.round(jobSeconds * 1000) }, 'concurrency resized');
      worker.concurrency = wanted;
    }
    // Once a minute at most: the check runs every second, and a log that says it 3,600 times an hour says nothing.
    if (wanted === config.concurrency && total * jobSeconds > config.concurrency && Date.now() - cappedWarnedAt >= CAPPED_WARN_EVERY_MS) {
      cappedWarnedAt = Date.now();
      logger.warn({ concurrency: config.concurrency, needed: Math.ceil(total * jobSeconds) }, 'latency caps the rate: raise --concurrency');
    }
  };
  // The rate over time, in the timeline of each run this process is sending, for the report's rate against its 429s.
  const recordRate = (): void => {
    for (const [runId, at] of lastSent) {
      const ledger = ledgers.get(runId);
      if (!ledger || Date.now() - at > 2000) continue;
      ledger.recordRate(rates.total).catch((err: unknown) => logger.debug({ err }, 'could not record the rate in the timeline'));
    }
  };
  // The lookups' rate likewise, beside it, in the runs this process looked rows up for (one HSET a second each).
  function recordLookupRate(runId: string, first = false): void {
    const rate = deps.appleLookups?.rate;
    if (rate === undefined) return;
    const ledger = ledgerOf(runId);
    const done = first ? Promise.all([ledger.markLookups(), ledger.recordLookupRate(rate)]) : ledger.recordLookupRate(rate);
    done.catch((err: unknown) => logger.debug({ err }, "could not record the lookups' rate in the timeline"));
  }
  // The controller re-reads the shared rate on its own ticks; concurrency and the timeline follow once a second.
  const ticker = setInterval(() => {
    resize();
    recordRate();
    for (const [runId, at] of lastLookedUp) if (Date.now() - at <= 2000) recordLookupRate(runId);
  }, 1000);

  return {
    worker,
    rate: rates.controllers[0]!,
    rates: rates.controllers,
    async close(deadlineMs = config.shutdownTimeoutMs) {
      const deadline = Date.now() + deadlineMs;
      const left = (): number => deadline - Date.now();
      clearInterval(ticker);
      // Their last Redis reads: cut short by the deadline when Redis does not answer (nothing depends on them).
      await endsWithin(Promise.all([rates.stop(), unfollow()]), left());
      if (await endsWithin(worker.close(), left())) {
        const gone = inFlight.stop(true).catch((err: unknown) => logger.debug({ err }, 'could not remove this worker process heartbeat; it expires on its own'));
        await endsWithin(gone, HEARTBEAT_DELETE_MS);
        return { forced: false };
      }
      // worker.close(true) would only return the close under way (jobWorker.ts): forcing is abandoning it.
      abandoned = true;
      const requests = inHand;
      const blocking = await worker.abandon();
      const waitingFor = [
        requests > 0 ? `${requests} requests in flight did not finish` : "BullMQ's close did not finish with no request in flight",
        // 'reconnecting' is the state a close cannot get past (jobWorker.ts); 'end' is BullMQ's close having cut it
        ...(blocking !== undefined && blocking !== 'ready' && blocking !== 'end' ? [`its job-waiting Redis connection was ${blocking}`] : []),
      ].join('; ');
      logger.warn(
        { deadlineMs, requestsInFlight: requests, ...(blocking ? { blockingConnection: blocking } : {}) },
        `gave up waiting for the worker to close after ${deadlineMs} ms: ${waitingFor}; forcing it (rows in flight come back as stalled jobs once their locks lapse)`,
      );
      // The heartbeat lapses on its own: the requests abandoned count as in flight at this process's death.
      await inFlight.stop(false);
      return { forced: true };
    },
  };
}

/** BullMQ's answers to finishing a job whose lock or state is no longer this worker's (bullmq's finishedErrors). */
const LOST_JOB_CODES: ReadonlySet<number> = new Set([ErrorCode.JobNotExist, ErrorCode.JobLockNotExist, ErrorCode.JobNotInState, ErrorCode.JobLockMismatch]);

/** A lost lock, as BullMQ reports it: on finishing the job (a code), or on renewing its lock (a message only). */
function isLostJobLock(err: Error): boolean {
  return LOST_JOB_CODES.has((err as Error & { code?: unknown }).code as number) || /^could not renew lock for job /.test(err.message);
}
