// A fatal answer for one key stops only the rows that key sends. Apps have their own keys (keyRing.ts), so a
// revoked Play key must not hold up the App Store rows of the same run.
//
// In Redis, shared by every process:
// - the stops (RedisKeys.keyStops): one field per platform and key fingerprint (`android:1a2b3c4d`), holding why
//   that key stopped that platform's rows. A process parks a row when its own key for the row's platform is
//   stopped; a process holding another key for that platform sends it.
// - the parked rows: per run, a set of `<platform>:<row fingerprint>` (RedisKeys.parked), and an index of the
//   runs with parked rows of each platform (RedisKeys.parkedRuns). A parked job waits in BullMQ's delayed set,
//   PARK_MS ahead, with its attempts untouched; `unpark` promotes it. Should a parked row be forgotten (a crash
//   between the set and the move), it comes back after PARK_MS and is parked again or sent: never lost.
// A run whose rows are all either finished or parked is done for now: it ends with exit 3 and names the keys.
//
// Besides the platforms, one more lane: the App Store Server API lookups (workers/appleLookup.ts). An Apple key
// refused with a 401 stops the rows that need a lookup, parked under `appstore:` beside the platforms' rows, while
// every other row (App Store receipts included) goes on. No RevenueCat key sends that lane, so `follow` never
// sweeps it: only a process with another Apple key (or the same one, once told to retry) sends it back.
import { promoteJob } from './promoteJobs.js';
import type { Job } from 'bullmq';
import type { RedisClient } from '../redis/connection.js';
import { jobIdOf, RedisKeys } from '../redis/keys.js';
import type { FatalCause } from '../revenuecat/classify.js';
import { PLATFORMS, type Platform } from '../revenuecat/fields.js';
import type { KeyRing } from '../revenuecat/keyRing.js';
import type { ReceiptJobData } from '../types.js';
import type { ReceiptsQueue } from './receiptsQueue.js';

/** The lane of rows stopped by a refused App Store Connect API key (their lookups), beside the platforms. */
export const APPLE_LOOKUP_LANE = 'appstore';
/** What a stop stops: one platform's rows (a RevenueCat key), or the App Store lookups. */
export type StopLane = Platform | typeof APPLE_LOOKUP_LANE;

/** How long a parked row waits before it comes back by itself, if nothing promotes it earlier. */
export const PARK_MS = 3_600_000;
/** Members promoted per round trip when un-parking. */
const PAGE = 500;
/** How often a worker re-reads the stops (a stop made elsewhere is applied here within this time). */
export const FOLLOW_MS = 250;
/** Every this many reads, a worker sends back the parked rows it can send (rows parked by a process with another key). */
const SWEEP_EVERY = 20;

/** Why one key stopped one platform's rows. Names the key by its variable and first characters only. */
export interface KeyStop {
  platform: StopLane;
  /** keyFingerprint() of the key refused */
  fingerprint: string;
  /** keyLabel(): `goog_ab…` */
  key: string;
  /** the variable that holds it: REVENUECAT_API_KEY_ANDROID, or REVENUECAT_API_KEY */
  variable: string;
  cause: FatalCause;
  message: string;
  status: number;
  code?: number;
  /** the run whose row got the answer */
  run: string;
  at: string;
}

/** Parked rows of one run, by platform. */
export type ParkedCounts = Partial<Record<StopLane, number>>;

function field(platform: string, fingerprint: string): string {
  return `${platform}:${fingerprint}`;
}

function isLane(value: string): value is StopLane {
  return value === APPLE_LOOKUP_LANE || (PLATFORMS as readonly string[]).includes(value);
}

/** `<platform>:<rest>` split at the first colon. */
function splitMember(member: string): [string, string] {
  const colon = member.indexOf(':');
  return [member.slice(0, colon), member.slice(colon + 1)];
}

export class KeyStops {
  private readonly keys: RedisKeys;
  /** `<platform>:<fingerprint>` of every stop, as last read (and as this process stopped since) */
  private stopped = new Set<string>();
  /** platforms with parked rows somewhere, as last read */
  private parkedPlatforms = new Set<string>();

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly queue: ReceiptsQueue,
  ) {
    this.keys = new RedisKeys(prefix);
  }

  /** Whether rows of `platform` sent with the key of this fingerprint are stopped (the view of the last refresh). */
  isStopped(platform: StopLane, fingerprint: string): boolean {
    return this.stopped.has(field(platform, fingerprint));
  }

  /** Whether any run has parked rows of `platform` (the view of the last refresh). */
  hasParked(platform: StopLane): boolean {
    return this.parkedPlatforms.has(platform);
  }

  /** Reads the stops and the parked index again: other processes stop and lift keys too. */
  async refresh(): Promise<void> {
    const [fields, index] = await Promise.all([this.redis.hkeys(this.keys.keyStops), this.redis.smembers(this.keys.parkedRuns)]);
    this.stopped = new Set(fields);
    this.parkedPlatforms = new Set(index.map((m) => splitMember(m)[0]));
  }

  /** Records stops (the first reason per platform and key stands) and applies them in this process at once. */
  async stop(stops: readonly KeyStop[]): Promise<void> {
    for (const s of stops) {
      await this.redis.hsetnx(this.keys.keyStops, field(s.platform, s.fingerprint), JSON.stringify(s));
      this.stopped.add(field(s.platform, s.fingerprint));
    }
  }

  async list(): Promise<KeyStop[]> {
    const all = await this.redis.hgetall(this.keys.keyStops);
    return Object.values(all).map((raw) => JSON.parse(raw) as KeyStop);
  }

  /** Forgets one stop (a new process with the same key retries a cause fixed in the dashboard). */
  async lift(platform: StopLane, fingerprint: string): Promise<void> {
    await this.redis.hdel(this.keys.keyStops, field(platform, fingerprint));
    this.stopped.delete(field(platform, fingerprint));
  }

  /**
   * Parks a row that is being processed: recorded first, then moved to the delayed set without spending an
   * attempt. The processor then throws BullMQ's DelayedError.
   */
  async park(job: Job<ReceiptJobData, void, string>, token: string | undefined, ms = PARK_MS, lane: StopLane = job.data.platform): Promise<void> {
    const { run, fp } = job.data;
    const platform = lane;
    await this.redis.sadd(this.keys.parked(run), field(platform, fp));
    await this.redis.sadd(this.keys.parkedRuns, field(platform, run));
    this.parkedPlatforms.add(platform);
    await job.moveToDelayed(Date.now() + ms, token);
  }

  /** A row of a platform with parked rows got its outcome: make sure no parked entry of it is left (crash leftovers). */
  async settled(data: Pick<ReceiptJobData, 'run' | 'fp' | 'platform'>): Promise<void> {
    if (this.parkedPlatforms.has(data.platform)) await this.redis.srem(this.keys.parked(data.run), field(data.platform, data.fp));
  }

  /** Sends the parked rows of these platforms back to the queue, every run's; returns how many came back. */
  async unpark(platforms: readonly StopLane[]): Promise<number> {
    const wanted = new Set<string>(platforms);
    let promoted = 0;
    for (const entry of await this.redis.smembers(this.keys.parkedRuns)) {
      const [platform, runId] = splitMember(entry);
      if (!wanted.has(platform)) continue;
      const set = this.keys.parked(runId);
      let found = 0;
      let cursor = '0';
      do {
        const [next, members] = await this.redis.sscan(set, cursor, 'MATCH', `${platform}:*`, 'COUNT', PAGE);
        cursor = next;
        if (members.length === 0) continue;
        found += members.length;
        // Out of the set first: a crash before the promotion leaves the job delayed, and it comes back after PARK_MS.
        await this.redis.srem(set, ...members);
        const moved = await Promise.all(members.map((m) => this.promote(jobIdOf(runId, splitMember(m)[1]))));
        promoted += moved.filter(Boolean).length;
      } while (cursor !== '0');
      // An entry is dropped once a pass finds nothing left under it (a row parked meanwhile keeps it alive).
      if (found === 0) await this.redis.srem(this.keys.parkedRuns, entry);
    }
    return promoted;
  }

  /**
   * Keeps this process's view fresh while it sends with `ring`, and now and then sends back the parked rows of
   * platforms its own keys may send. Returns the function that stops following.
   */
  follow(ring: KeyRing, onError: (err: unknown) => void, everyMs = FOLLOW_MS): () => Promise<void> {
    let reads = 0;
    let busy: Promise<void> | undefined;
    const tick = async (): Promise<void> => {
      await this.refresh();
      if (++reads % SWEEP_EVERY !== 0) return;
      const sendable = ring.platforms().filter((p) => this.hasParked(p) && !this.isStopped(p, ring.forPlatform(p)?.fingerprint ?? ''));
      if (sendable.length > 0) await this.unpark(sendable);
    };
    const timer = setInterval(() => {
      busy ??= tick()
        .catch(onError)
        .finally(() => (busy = undefined));
    }, everyMs);
    timer.unref();
    return async () => {
      clearInterval(timer);
      await busy;
    };
  }

  /** Parked rows of a run. */
  async parkedCount(runId: string): Promise<number> {
    return this.redis.scard(this.keys.parked(runId));
  }

  /** Parked rows of a run by platform (reads the whole set: for reports, not for polling). */
  async parkedByPlatform(runId: string): Promise<ParkedCounts> {
    const counts: ParkedCounts = {};
    let cursor = '0';
    do {
      const [next, members] = await this.redis.sscan(this.keys.parked(runId), cursor, 'COUNT', 1000);
      cursor = next;
      for (const m of members) {
        const platform = splitMember(m)[0];
        if (isLane(platform)) counts[platform] = (counts[platform] ?? 0) + 1;
      }
    } while (cursor !== '0');
    return counts;
  }

  /** Promotes a parked job; false when it is gone or no longer delayed (sent meanwhile, or already back). */
  private promote(jobId: string): Promise<boolean> {
    return promoteJob(this.queue, jobId);
  }
}
