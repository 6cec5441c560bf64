// Rows given by an Apple transaction id (issue 17): before the row's POST, its signed transaction is fetched from
// Apple's App Store Server API with the team's App Store Connect API key, and posted as the row's fetch_token. A
// lookup and its POST are one row's work, in one job: the lookup first (its own rate scope), then the processor's
// usual way (the user's lock and RevenueCat's pacer slot, the POST, the ledger). Neither API waits idle for the
// other: a lookup waits only for the lookups' schedule, a POST only for RevenueCat's.
//
// - Rate. The lookups have a limit scope of their own, 'apple' (rateScope.ts's machinery: a RateController and a
//   Pacer shared by every process through Redis), capped by config appleRate (Apple: 50/s per app in production,
//   a tenth in the sandbox), which `status` shows beside RevenueCat's. A 429 (4290000) names the UNIX time in ms
//   to wait until: the row goes to the delayed set until exactly then, attempts untouched, and the lookups'
//   schedule is held that long for every process (pace-1.lua) while RevenueCat's POSTs go on.
// - A 401 stops the lookups only, naming the key id: their rows are parked in the `appstore` lane
//   (queue/keyStops.ts), like a refused RevenueCat key's, and every other row goes on. A new process with another
//   key sends them back (AppleLookups.start); with the same key they stay parked.
// - The row's outcome on a lookup's failure: apple_transaction_not_found (4040010 everywhere asked),
//   apple_invalid_transaction_id (4000006); 5000001, 4040002/4/6, 5xx and network errors are retried with backoff
//   like a POST's transient failures (serverApiErrors.ts).
// - One purchase, one POST: a row whose user has other rows given by a transaction id in the run (a lookup group,
//   set by the ingest) is posted only if no newer transaction of its purchase is among them; else it ends
//   `superseded`, naming the row posted (lookupGroupWait.ts, ledger/lookupGroups.ts).
// - A purchase another user holds (migrated by an earlier run or this one, or claimed by another user's looked-up
//   row of this run): held as a conflict like an ingest's, or posted with the run's --on-conflict send
//   (lookupConflicts.ts), right before the POST.
import { DelayedError, type Job } from 'bullmq';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { RunLedger } from '../ledger/runLedger.js';
import type { WorkerReport } from './workerReport.js';
import { APPLE_LOOKUP_LANE, PARK_MS, type KeyStop, type KeyStops } from '../queue/keyStops.js';
import type { RedisClient } from '../redis/connection.js';
import { AppStoreServerApiClient, type LookupResult } from '../appstore/serverApiClient.js';
import { appleCredentialsOf, appleKeyFingerprint, APPLE_VARIABLES, missingCredentialsMessage } from '../appstore/serverApiCredentials.js';
import { classifyLookup, type LookupVerdict } from '../appstore/serverApiErrors.js';
import { ServerApiTokens } from '../appstore/serverApiJwt.js';
import { lookupOf, type AppleLookup } from '../appstore/lookup/transactionLookup.js';
import type { Outcome, ReceiptJobData } from '../types.js';
import { TransientFailure } from './backoff.js';
import { outcomeOf } from './outcome.js';
import { Pacer } from './pacer.js';
import type { ReceiptProcessor } from './processor.js';
import type { ReceiptsQueue } from '../queue/receiptsQueue.js';
import { isGrouped, LookupGroupSteps } from './lookupGroupWait.js';
import { checkLookedUpConflict } from './lookupConflicts.js';
import { RateController } from './rateController.js';
import { APPLE_RATE_SCOPE } from '../redis/keys.js';

/** How long a row waits before trying again when the lookups' schedule is full that far ahead. */
const SCHEDULE_FULL_DELAY_MS = 250;

type ReceiptJob = Job<ReceiptJobData, void, string>;

export interface AppleLookupDeps {
  /** absent when this process has no App Store Connect API key: rows that need a lookup fail as no_apple_credentials */
  client?: Pick<AppStoreServerApiClient, 'getTransaction'>;
  /** the key's id (APPLE_KEY_ID) and fingerprint (its stop) */
  keyId?: string;
  fingerprint?: string;
  /** why there is no client (names the variables) */
  missing?: string;
  /** config appleBundleIds: the apps a row without a bundle_id cell is looked up in, in turn */
  bundleIds: readonly string[];
  stops: KeyStops;
  pacer?: Pick<Pacer, 'take'>;
  rate?: Pick<RateController, 'rateLimited'>;
  ledgerFor: (runId: string) => RunLedger;
  logger: Logger;
  maxAttempts: number;
  /** the wait of a 429 without a usable Retry-After */
  defaultWaitMs: number;
  report?: Pick<WorkerReport, 'row'>;
  /** each lookup's time and run: the worker sizes its concurrency for a row's whole work, and records the lookups' rate in the run's timeline (receiptWorker.ts) */
  onLookup?: (durationMs: number, runId: string) => void;
  /** the queue, to wake rows waiting for their lookup group (lookupGroupWait.ts) */
  queue?: Pick<ReceiptsQueue, 'getJob'>;
  now?: () => number;
}

/** A processor that looks a row's transaction id up before `inner` posts it; rows with a token go straight to `inner`. */
export function withAppleLookups(inner: ReceiptProcessor, deps: AppleLookupDeps): ReceiptProcessor {
  const now = deps.now ?? Date.now;
  const groups = new LookupGroupSteps({
    ledgerFor: deps.ledgerFor,
    logger: deps.logger,
    settled: (data) => deps.stops.settled(data),
    ...(deps.queue ? { queue: deps.queue } : {}),
    now,
  });
  /** A lookup's final failure: the row's outcome, then its lookup group (if any) waits no more for it. */
  const record = async (job: ReceiptJob, outcome: Outcome): Promise<void> => {
    if (await deps.ledgerFor(job.data.run).recordOutcome(outcome)) deps.report?.row(outcome.status);
    await deps.stops.settled(job.data);
    await groups.failed(job);
  };
  const failed = (job: ReceiptJob, reason: string, message: string, extra: { status?: number | undefined; code?: number | undefined } = {}): Outcome =>
    outcomeOf(job, {
      status: 'failed',
      reason,
      message,
      attempts: job.attemptsMade + 1,
      ...(extra.status !== undefined ? { http_status: extra.status } : {}),
      ...(extra.code !== undefined ? { code: extra.code } : {}),
    });
  const delay = async (job: ReceiptJob, token: string | undefined, until: number): Promise<never> => {
    await job.moveToDelayed(until, token);
    throw new DelayedError();
  };

  return async function lookUpThenPost(job, token) {
    const data = job.data;
    const lookup = lookupOf(data);
    if (!lookup) return inner(job, token);
    // Decided on an earlier start of the job (looked up, and posted rather than superseded): post what was found.
    if (lookup.signed !== undefined && (lookup.decided === 'post' || !isGrouped(lookup))) {
      if (lookup.decided === 'post') await groups.decidedBefore(job);
      return post(job, token, lookup, false);
    }
    // A row of a lookup group: finished before a crash, or looked up before (kept on the job, or in its group).
    let signed = lookup.signed;
    if (isGrouped(lookup)) {
      const start = await groups.start(job);
      if (start.kind === 'finished') return;
      signed ??= start.signed;
    }
    // (taken from its group, not its job: kept on the job if it goes back to the queue)
    if (signed !== undefined) return decide(job, token, lookup, signed, lookup.signed === undefined);
    const log = (): Logger => deps.logger.child({ run: data.run, src: data.src, line: data.line });
    if (!deps.client || deps.fingerprint === undefined) {
      await record(job, failed(job, 'no_apple_credentials', deps.missing ?? missingCredentialsMessage(Object.values(APPLE_VARIABLES))));
      return;
    }
    if (deps.stops.isStopped(APPLE_LOOKUP_LANE, deps.fingerprint)) return park(job, token);
    const bundles = lookup.bundle_id !== undefined ? [lookup.bundle_id] : deps.bundleIds;
    if (bundles.length === 0) {
      await record(job, failed(job, 'no_bundle_id', 'no bundle id to look the transaction id up in: give --bundle-id (config appleBundleIds) or a bundle_id column'));
      return;
    }
    // Several configured apps and no bundle_id cell: each is asked in turn until one knows the id.
    let result: LookupResult | undefined;
    let verdict: LookupVerdict | undefined;
    let bundle = bundles[0] as string;
    for (const candidate of bundles) {
      if (deps.pacer && !(await deps.pacer.take())) return delay(job, token, now() + SCHEDULE_FULL_DELAY_MS);
      bundle = candidate;
      result = await deps.client.getTransaction(lookup.transaction_id, candidate);
      deps.onLookup?.(result.durationMs, data.run);
      verdict = classifyLookup(result);
      if (!(verdict.kind === 'permanent' && verdict.reason === 'apple_transaction_not_found')) break;
    }
    if (!verdict || !result) return;
    switch (verdict.kind) {
      case 'found':
        return decide(job, token, { ...lookup, bundle_id: bundle }, verdict.signedTransaction, true);
      case 'permanent':
        await record(job, failed(job, verdict.reason, verdict.message, verdict));
        if (deps.logger.isLevelEnabled('info')) log().info({ reason: verdict.reason, code: verdict.code }, 'row failed: App Store Server API lookup');
        return;
      case 'transient': {
        if (job.attemptsMade + 1 >= deps.maxAttempts) {
          await record(job, failed(job, verdict.reason, `gave up after ${job.attemptsMade + 1} attempts: ${verdict.message}`, verdict));
          log().warn({ reason: verdict.reason }, 'row failed: App Store Server API lookup out of attempts');
          return;
        }
        throw new TransientFailure(`${verdict.reason}: ${verdict.message}`, undefined);
      }
      case 'rate_limited': {
        // Apple's Retry-After is the moment to wait until: the row comes back then, not later, and no earlier.
        const at = now();
        const until = verdict.retryAt ?? at + deps.defaultWaitMs;
        log().warn({ waitMs: until - at }, 'App Store Server API rate limit: lookups wait until its Retry-After');
        await deps.rate?.rateLimited({ retryAfterMs: until - at, durationMs: result.durationMs });
        return delay(job, token, until);
      }
      case 'unauthorized': {
        const stop: KeyStop = {
          platform: APPLE_LOOKUP_LANE,
          fingerprint: deps.fingerprint,
          key: `key id ${deps.keyId ?? '?'}`,
          variable: APPLE_VARIABLES.keyId,
          cause: 'key',
          message:
            `Apple's App Store Server API refused the App Store Connect API key ${deps.keyId ?? '?'} (${APPLE_VARIABLES.keyId}, ${APPLE_VARIABLES.issuerId}): ${verdict.message}. ` +
            'The rows given by a transaction id wait; every other row goes on. Check the key in App Store Connect (Users and Access › Integrations) or set another, and run the same command again',
          status: verdict.status,
          ...(verdict.code !== undefined ? { code: verdict.code } : {}),
          run: data.run,
          at: new Date().toISOString(),
        };
        log().error({ status: verdict.status, keyId: deps.keyId }, stop.message);
        await deps.stops.stop([stop]);
        return park(job, token);
      }
    }
  };

  async function park(job: ReceiptJob, token: string | undefined): Promise<never> {
    await deps.stops.park(job, token, PARK_MS, APPLE_LOOKUP_LANE);
    throw new DelayedError();
  }

  /** Posted, or superseded by a newer transaction of its purchase among its lookup group's rows (lookupGroupWait.ts). */
  async function decide(job: ReceiptJob, token: string | undefined, lookup: AppleLookup, signed: string, fresh: boolean): Promise<void> {
    const verdict = await groups.verdict(job, token, lookup, signed);
    if (verdict.kind === 'post') return post(job, token, verdict.lookup, fresh && verdict.lookup.decided === undefined);
  }

  /**
   * The processor's way, posting the signed transaction, unless its purchase is another user's and the run holds
   * conflicts (lookupConflicts.ts); a job handed back keeps what it found (no second lookup, no second check).
   */
  async function post(job: ReceiptJob, token: string | undefined, lookup: AppleLookup, fresh: boolean): Promise<void> {
    const checked = await checkLookedUpConflict(job, lookup, { ledgerFor: deps.ledgerFor, logger: deps.logger, settled: (data) => deps.stops.settled(data) });
    if (checked.kind === 'held') return;
    const keep = fresh || checked.lookup !== lookup;
    const original = job.data;
    job.data = { ...original, lookup: checked.lookup };
    try {
      await inner(job, token);
    } catch (err) {
      // The job goes back to the queue (a busy user, a 429, a retried POST, a parked key): keep what was found.
      if (keep) await job.updateData(job.data).catch((e: unknown) => deps.logger.debug({ err: e }, 'could not keep the signed transaction on the job'));
      throw err;
    }
  }
}

/** What a sending process sets up for the lookups: the client and its key, the 'apple' rate scope. */
export class AppleLookups {
  private constructor(
    readonly deps: Omit<AppleLookupDeps, 'ledgerFor' | 'logger' | 'report' | 'stops' | 'queue'>,
    private readonly controller: RateController | undefined,
    private readonly client: AppStoreServerApiClient | undefined,
  ) {}

  /**
   * Reads the key from the configuration (none: rows needing a lookup fail as no_apple_credentials), checks that
   * it can sign, joins the 'apple' rate scope, and sends back the rows parked behind another Apple key.
   */
  static async start(redis: RedisClient, config: Config, stops: KeyStops, logger: Logger): Promise<AppleLookups> {
    const base = { bundleIds: config.appleBundleIds ?? [], maxAttempts: config.maxAttempts, defaultWaitMs: config.rateLimitDefaultWaitMs };
    const found = appleCredentialsOf(config);
    if (!found.ok) return new AppleLookups({ ...base, missing: missingCredentialsMessage(found.missing) }, undefined, undefined);
    const tokens = new ServerApiTokens(found.credentials);
    await tokens.check();
    const client = new AppStoreServerApiClient({
      tokens,
      baseUrl: config.appStoreApiUrl,
      timeoutMs: config.requestTimeoutMs,
      connections: Math.min(config.connections, 16),
    });
    const fingerprint = appleKeyFingerprint(found.credentials);
    const rate = new RateController(redis, config.prefix, {
      configuredRate: config.appleRate,
      scope: APPLE_RATE_SCOPE,
      defaultWaitMs: config.rateLimitDefaultWaitMs,
      params: { headroom: config.rateHeadroom, floorRate: config.rateFloorPerSecond, nudge: config.rateNudge, maxCut: config.rateMaxCut },
      logger,
    });
    const pacer = new Pacer(redis, config.prefix, config.appleRate * config.rateHeadroom, config.pacerMaxWaitMs, APPLE_RATE_SCOPE);
    rate.onChange((s) => {
      pacer.rate = s.rate * config.rateHeadroom;
    });
    await rate.start();
    pacer.rate = rate.current.rate * config.rateHeadroom;
    // A stop of another Apple key is this key's to try again; one of this very key stands (it was refused).
    for (const stop of await stops.list()) {
      if (stop.platform !== APPLE_LOOKUP_LANE) continue;
      if (stop.fingerprint === fingerprint) {
        logger.error({ keyId: found.credentials.keyId }, `APPLE_KEY_ID ${found.credentials.keyId} is still the key Apple refused: the rows given by a transaction id stay queued`);
        continue;
      }
      await stops.lift(APPLE_LOOKUP_LANE, stop.fingerprint);
      const back = await stops.unpark([APPLE_LOOKUP_LANE]);
      logger.warn({ refused: stop.key, rows: back }, `${stop.key} is no longer the App Store Connect API key: the rows given by a transaction id are queued again`);
    }
    await stops.refresh();
    return new AppleLookups({ ...base, client, keyId: found.credentials.keyId, fingerprint, pacer, rate }, rate, client);
  }

  /** The processor with the lookups in front of it. */
  wrap(inner: ReceiptProcessor, deps: Pick<AppleLookupDeps, 'ledgerFor' | 'logger' | 'report' | 'stops' | 'onLookup' | 'queue'>): ReceiptProcessor {
    return withAppleLookups(inner, { ...this.deps, ...deps });
  }

  /** The lookups' rate (learned or configured, lookups/s) this process holds; undefined without a key. */
  get rate(): number | undefined {
    return this.controller?.current.rate;
  }

  async close(): Promise<void> {
    await this.controller?.stop();
    await this.client?.close();
  }
}
