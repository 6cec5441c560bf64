// What a worker does with one row: take the user's lock, POST the receipt with the key of the row's platform,
// classify the answer, and either write the row's outcome or hand the job back to BullMQ to be tried again later
// (or park it while its key is stopped: queue/keyStops.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import { DelayedError, RateLimitError, type Job } from 'bullmq';
import type { Logger } from '../logger.js';
import type { RequestSample, RunLedger } from '../ledger/runLedger.js';
import type { FatalStop } from '../queue/fatalStop.js';
import type { KeyStop } from '../queue/keyStops.js';
import type { ReceiptsQueue } from '../queue/receiptsQueue.js';
import { classify, type Classification } from '../revenuecat/classify.js';
import type { ApiResult, RevenueCatClient } from '../revenuecat/client.js';
import { missingKeyReason, rowsOf, type KeyInfo, type KeyRing } from '../revenuecat/keyRing.js';
import { judgeImportAnswer } from '../state/importAnswer.js';
import type { Outcome, ReceiptJobData } from '../types.js';
import type { MemoryPressure } from '../redis/memoryPressure.js';
import { TransientFailure } from './backoff.js';
import { googleTokenExpired } from './googleCutoff.js';
import { outcomeOf } from './outcome.js';
import { postedBody } from '../appstore/lookup/transactionLookup.js';
import type { InFlightRows } from './inFlightRows.js';
import { applePurchaseIds } from '../appstore/purchaseIds.js';
import type { Pacer } from './pacer.js';
import type { RateLimitAction } from './rateController.js';
import type { UserLock } from './userLock.js';
import type { WorkerReport } from './workerReport.js';

/**
 * How far apart the rows that were in flight at one worker death are sent again (a random wait up to this, not in
 * flight): much longer than a request, so that a poison row's neighbours are rarely in flight at its next kill.
 */
const DEATH_SPREAD_MS = 2000;

export interface ProcessorDeps {
  client: Pick<RevenueCatClient, 'postReceipt'>;
  /** which key the client sends each platform's rows with (by name and fingerprint: the ring never lends the keys here) */
  keys: KeyRing;
  queue: ReceiptsQueue;
  fatal: FatalStop;
  userLock: UserLock;
  ledgerFor: (runId: string) => RunLedger;
  logger: Logger;
  maxAttempts: number;
  rateLimitDefaultWaitMs: number;
  userBusyDelayMs: number;
  /** how long a job waits in the worker for its user's request in flight before going back to the queue */
  userLockWaitMs?: number;
  /** told of each answer and each outcome written (the process's metrics) */
  report?: WorkerReport;
  /**
   * How long a job goes back to the queue for when the pacer's schedule is booked beyond its max wait: about
   * when it has room again (the pacer's max wait). Default: userBusyDelayMs.
   */
  pacerFullDelayMs?: number;
  /** which rows' requests are in flight, and the deaths of worker processes that had them in flight (inFlightRows.ts) */
  inFlight?: InFlightRows;
  /** called right before a row's request goes (a test-only hook: testPoison.ts) */
  beforeSend?: (data: ReceiptJobData) => void;
  /** spaces the requests of every process evenly (see pacer.ts) */
  pacer?: Pacer;
  /**
   * With one limit per key (rateLimitScope 'key', rateScope.ts): the pacer of the key's scope; wins over `pacer`.
   * Undefined for a key: `pacer`.
   */
  pacerFor?: (key: KeyInfo) => Pacer | undefined;
  /** how much earlier than expected_expires_at an expiry may be */
  expiryToleranceMs?: number;
  /**
   * sees every answer before it is acted on: the rate controller learns limits and 429s from it (`key`: the key
   * that sent it), and says for a 429 of the limit whether the queue pauses or only the row waits
   */
  observe?: (result: ApiResult, verdict: Classification, key: KeyInfo) => Promise<RateLimitAction | undefined>;
  /**
   * Redis at maxmemory: the row's writes wait here until Redis accepts them (redis/memoryPressure.ts). A job must
   * not fail for it: BullMQ can still fail and remove a job at maxmemory, and its answer would be lost with it.
   */
  memory?: MemoryPressure;
  /** keeps the job's lock alive while its writes wait at maxmemory (queue/jobLock.ts), since BullMQ cannot */
  holdLock?: (job: Job<ReceiptJobData, void, string>, token: string | undefined) => Promise<void>;
  random?: () => number;
  /** the clock that says how long ago a Google token expired (tests) */
  now?: () => number;
}

export type ReceiptProcessor = (job: Job<ReceiptJobData, void, string>, token?: string) => Promise<void>;

function statusLabel(result: ApiResult): string {
  return result.kind === 'response' ? String(result.status) : result.error;
}

export function createProcessor(deps: ProcessorDeps): ReceiptProcessor {
  const random = deps.random ?? Math.random;
  const now = deps.now ?? Date.now;
  const stops = deps.fatal.keys;
  /** The writes of a job in hand: at maxmemory they wait, and the job keeps its lock meanwhile. */
  const writeFor =
    (job: Job<ReceiptJobData, void, string>, token: string | undefined) =>
    <T>(op: () => Promise<T>): Promise<T> =>
      deps.memory ? deps.memory.retry(op, { onRefused: async () => deps.holdLock?.(job, token) }) : op();

  /** Back to the delayed set without spending an attempt: the row did nothing wrong. */
  const later = async (job: Job<ReceiptJobData, void, string>, token: string | undefined, ms: number): Promise<never> => {
    const until = Date.now() + ms + Math.round(random() * ms);
    await writeFor(job, token)(() => job.moveToDelayed(until, token));
    throw new DelayedError();
  };

  /** Parked until its key is fixed (queue/keyStops.ts), attempts untouched. */
  const park = async (job: Job<ReceiptJobData, void, string>, token: string | undefined): Promise<never> => {
    await writeFor(job, token)(() => stops.park(job, token));
    throw new DelayedError();
  };

  return async function processReceipt(job, token) {
    const data = job.data;
    const write = writeFor(job, token);
    const ledger = deps.ledgerFor(data.run);
    const user = data.body.app_user_id;
    // The request that brought the answer: a final answer's record counts it in the same call.
    // (assigned once the answer is in; `record` may run before that, for a row without a key)
    let request: RequestSample | undefined = undefined;
    // The user's lock going back, once the answer is in: awaited with the row's next write (see below).
    let released: Promise<void> = Promise.resolve();
    const sent = { platform: data.platform, body: data.body };
    const record = async (outcome: Outcome): Promise<void> => {
      // a success of an App Store row enters its purchases in the cross-run purchase index (read again from the
      // token posted: for a row given by its transaction id, the signed transaction looked up for it)
      const purchases = outcome.status === 'succeeded' ? applePurchaseIds(sent.platform, postedBody(data).fetch_token) : [];
      const [written] = await Promise.all([
        write(() => ledger.recordAnswer(outcome, { sent, ...(request ? { request } : {}), ...(purchases.length > 0 ? { purchases } : {}) })),
        released,
      ]);
      if (written) deps.report?.row(outcome.status);
      await write(() => stops.settled(data));
    };
    // One child logger per row only when a line is written (most rows write none at the default level).
    const log = (): Logger => deps.logger.child({ run: data.run, src: data.src, line: data.line, attempt: job.attemptsMade + 1 });
    // Queued again by an ingest that had been stopped between admitting and queueing it: the first job may have
    // been answered and removed before this one was added. One ledger read for such rows only, never a second send.
    if (data.recheck === true && (await write(() => ledger.finished([data.fp])))[0] === true) return;
    // The row's key: none means this process cannot send it at all (ingest checks this when it knows the keys).
    const key = deps.keys.forPlatform(data.platform);
    if (!key) {
      const reason = missingKeyReason(data.platform);
      await record(outcomeOf(job, { status: 'failed', reason: 'no_api_key', message: reason, attempts: job.attemptsMade }));
      deps.logger.warn({ run: data.run, src: data.src, line: data.line }, reason);
      return;
    }
    // A key RevenueCat refused sends nothing more: the row waits, attempts untouched, until the key is fixed.
    if (stops.isStopped(data.platform, key.fingerprint)) return park(job, token);
    // The user's lock and the request's slot of the pacer, in one Redis call where the keys allow (userLock.ts).
    const pacer = deps.pacerFor?.(key) ?? deps.pacer;
    let full = false;
    const lock = await deps.userLock.acquire(user, {
      waitMs: deps.userLockWaitMs ?? 0,
      // a lock left by this row's own attempt in a worker that died is taken over, not waited out
      ...(job.id !== undefined ? { owner: job.id } : {}),
      ...(pacer ? { pacer } : {}),
      write,
      onFull: () => {
        full = true;
      },
    });
    // Not taken within a short wait: the job goes to the delayed set rather than waiting active, so that a worker's
    // death catches only requests in flight. Its user busy: back soon (a request takes tens of ms); the pacer's
    // schedule booked beyond its max wait: back about when the schedule has room again.
    if (!lock) return later(job, token, full ? (deps.pacerFullDelayMs ?? deps.userBusyDelayMs) : deps.userBusyDelayMs);

    // The request is about to go: this process is named as its sender, and a row that was in flight at too many
    // worker deaths is not sent again (inFlightRows.ts).
    const flight = deps.inFlight;
    const jobId = job.id;
    if (flight && jobId !== undefined) {
      let start = await write(() => flight.begin(jobId));
      if (!start.poison && start.died) {
        // Its last sender died with it in flight, and the rows in flight with it then come back with it: apart, by
        // a random moment not in flight, so that a poison row among them is the only one in flight when it kills.
        // The begin right before the request decides, as without the wait.
        await write(() => flight.stepAside(jobId));
        await sleep(Math.round(random() * DEATH_SPREAD_MS));
        start = await write(() => flight.begin(jobId));
      }
      if (start.poison) {
        released = deps.userLock
          .release(user, lock)
          .catch((err: unknown) => deps.logger.warn({ err, run: data.run, line: data.line }, 'could not release a user lock; it expires on its own'));
        const message = `not sent again: its request was in flight when ${start.deaths} worker processes died or hung (poisonStarts ${flight.poisonStarts})`;
        await record(outcomeOf(job, { status: 'failed', reason: 'poison_row', message, attempts: job.attemptsMade }));
        await write(() => flight.forget(jobId));
        log().error({ deaths: start.deaths }, 'poison row: it was in flight at every one of these worker deaths; failed without sending it again');
        return;
      }
    }
    deps.beforeSend?.(data);

    let result: ApiResult;
    try {
      // A row given by its transaction id posts the signed transaction looked up for it (workers/appleLookup.ts).
      result = await deps.client.postReceipt(data.platform, postedBody(data));
    } catch (err) {
      await deps.userLock.release(user, lock);
      if (flight && jobId !== undefined) await flight.end(jobId);
      throw err;
    }
    // The request is over: its user's lock goes back now, in the same round of Redis calls as the row's next write
    // (its answer, or its request's count), which waits for it. Not later: a row that waits for Redis at maxmemory
    // would hold its user until the lock expires. A lock that could not be given back expires on its own (userLockMs).
    released = deps.userLock
      .release(user, lock)
      .catch((err: unknown) => deps.logger.warn({ err, run: data.run, line: data.line }, 'could not release a user lock; it expires on its own'));
    // No longer in flight, and it did not kill this process: nothing of it stays (inFlightRows.ts). Awaited with
    // the row's next write, as the lock's release is.
    if (flight && jobId !== undefined) {
      const ended = flight.end(jobId).catch((err: unknown) => deps.logger.warn({ err, run: data.run, line: data.line }, 'could not clear a row in flight; it expires on its own'));
      released = Promise.all([released, ended]).then(() => undefined);
    }
    let verdict = classify(result, { variable: key.variable, label: key.label, rows: rowsOf(key.platforms) });
    // Store credentials are the app's, not the key's: only this platform's rows are concerned.
    if (verdict.kind === 'fatal' && verdict.cause === 'store_credentials') verdict = classify(result, { variable: key.variable, label: key.label, rows: data.platform });
    request = { status: statusLabel(result), durationMs: result.durationMs, rateLimited: verdict.kind === 'transient' && verdict.rateLimited };
    // An answer that will be tried again (or waits for the queue) has no record: its request is counted on its own.
    const final =
      verdict.kind === 'success' ||
      verdict.kind === 'permanent' ||
      (verdict.kind === 'transient' && !verdict.rateLimited && !verdict.userBusy && job.attemptsMade + 1 >= deps.maxAttempts);
    if (!final) {
      const counted = { ...request, fp: data.fp };
      await Promise.all([write(() => ledger.countRequest(counted)), released]);
    }
    deps.report?.request(result, verdict);
    const observe = deps.observe;
    const action = observe ? await write(() => observe(result, verdict, key)) : undefined;
    const attempt = job.attemptsMade + 1;

    const http = result.kind === 'response' ? { http_status: result.status } : {};
    const failed = (v: Exclude<Classification, { kind: 'success' }>, message: string): Outcome =>
      outcomeOf(job, { status: 'failed', ...http, ...(v.code !== undefined ? { code: v.code } : {}), reason: v.reason, message, attempts: attempt });

    switch (verdict.kind) {
      case 'success': {
        // Reconciled, and checked against the row's expected_* columns, from the subscriber the answer carries.
        const row = { src: data.src, line: data.line, app_user_id: data.body.app_user_id, product_id: data.body.product_id, expect: data.expect };
        const { summary, reconciliation: check, mismatches } = judgeImportAnswer(row, verdict.subscriber, deps.expiryToleranceMs);
        const outcome = check.ok
          ? outcomeOf(job, { status: 'succeeded', ...http, attempts: attempt, subscriber: summary, ...(mismatches.length > 0 ? { mismatches } : {}) })
          : outcomeOf(job, { status: 'failed', ...http, attempts: attempt, reason: check.reason, message: check.message, subscriber: summary });
        await record(outcome);
        if (!check.ok) log().warn({ reason: check.reason }, 'row accepted but not reconciled');
        else if (mismatches.length > 0) log().warn({ mismatches: mismatches.map((m) => m.kind) }, 'row migrated, but not as expected');
        else if (deps.logger.isLevelEnabled('debug')) log().debug({ status: verdict.status, product: summary.product_found }, 'row succeeded');
        return;
      }
      case 'permanent': {
        // A Google token past its cut-off gets a reason that says why no retry will help.
        const expired = googleTokenExpired(data, verdict, now());
        await record(expired ? failed({ ...verdict, reason: expired.reason }, expired.message) : failed(verdict, verdict.message));
        if (deps.logger.isLevelEnabled('info')) log().info({ status: verdict.status, code: verdict.code, reason: expired?.reason ?? verdict.reason }, 'row failed permanently');
        return;
      }
      case 'fatal': {
        // A refused key stops every row it sends; refused store credentials only this platform's rows.
        const platforms = verdict.cause === 'store_credentials' ? [data.platform] : key.platforms;
        const at = new Date().toISOString();
        const stopped: KeyStop[] = platforms.map((platform) => ({
          platform,
          fingerprint: key.fingerprint,
          key: key.label,
          variable: key.variable,
          cause: verdict.cause,
          message: verdict.message,
          status: verdict.status,
          ...(verdict.code !== undefined ? { code: verdict.code } : {}),
          run: data.run,
          at,
        }));
        log().error({ status: verdict.status, code: verdict.code, key: key.label, platforms }, verdict.message);
        await write(() => deps.fatal.stopKey(stopped, deps.keys));
        // The row is not at fault: parked with its attempts untouched, sent again once its key is fixed.
        return park(job, token);
      }
      case 'transient': {
        if (verdict.rateLimited) {
          // The limit is the whole queue's, so the whole queue waits; the row keeps its attempts. A 429 at a window's
          // edge holds the schedule for a slot or two only (rate/discovery.ts edgeHoldMs): then the row alone waits.
          const wait = action ? action.rowWaitMs : (verdict.retryAfterMs ?? deps.rateLimitDefaultWaitMs);
          if (action && action.pauseMs === 0) {
            log().info({ waitMs: wait }, 'rate limited at a window edge: only this row waits');
            return later(job, token, wait);
          }
          // Expected while the limit is discovered or followed: run.log only (the rate controller decides what it means).
          log().info({ waitMs: action?.pauseMs ?? wait }, 'rate limited: pausing the queue');
          await write(() => deps.queue.rateLimit(action?.pauseMs ?? wait));
          throw new RateLimitError();
        }
        if (verdict.userBusy) return later(job, token, Math.max(verdict.retryAfterMs ?? 0, deps.userBusyDelayMs));
        if (attempt >= deps.maxAttempts) {
          await record(failed(verdict, `gave up after ${attempt} attempts: ${verdict.message}`));
          log().warn({ reason: verdict.reason }, 'row failed: out of attempts');
          return;
        }
        if (deps.logger.isLevelEnabled('debug')) log().debug({ reason: verdict.reason }, 'transient failure, will retry');
        throw new TransientFailure(`${verdict.reason}: ${verdict.message}`, verdict.retryAfterMs);
      }
    }
  };
}
