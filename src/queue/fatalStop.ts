// A fatal API answer (a refused key, refused store credentials) means every further request with that key, or
// for that app, would fail the same way. The worker that sees one stops that key's rows for every process
// (keyStops.ts): they are parked, and the rows of the other keys go on. When every key of the process is
// stopped (always so with one key for the whole run), the whole queue pauses and the reason is left here, as
// before per-key stops existed, so that every process stops sending and `run` can tell the user what to fix.
//
// A new sending process (the same command run again) lifts what it can: stops of keys it no longer holds are
// its business no more (it sends those rows with its own key), stops whose cause is fixed in the dashboard
// (store credentials, access) are retried; a key RevenueCat refused stays stopped while it is still the key.
import type { RedisClient } from '../redis/connection.js';
import { RedisKeys } from '../redis/keys.js';
import type { KeyRing } from '../revenuecat/keyRing.js';
import type { ReceiptsQueue } from './receiptsQueue.js';
import { APPLE_LOOKUP_LANE, KeyStops, type KeyStop, type StopLane } from './keyStops.js';

/** A stopped key as reports show it: by platform, variable and first characters, never the key. */
export interface StoppedKey {
  platform: StopLane;
  /** `goog_ab…` */
  key: string;
  variable: string;
  status: number;
  code?: number;
  /** rows of the run parked behind it */
  rows?: number;
}

export interface FatalReason {
  message: string;
  status: number;
  code?: number;
  run: string;
  at: string;
  /** the keys stopped; absent in reasons written before per-key stops */
  keys?: StoppedKey[];
}

/** What a starting process did about earlier stops (for its log). */
export interface ResumeReport {
  /** stops of a key this process no longer holds for that platform: it sends those rows with its own */
  replaced: KeyStop[];
  /** stops lifted to try again with the same key (the cause is fixed in the dashboard, if anywhere) */
  retried: KeyStop[];
  /** stops of a refused key this process still holds: those rows stay parked */
  still: KeyStop[];
  /** parked rows sent back to the queue */
  unparked: number;
  /** the queue-wide stop there was, when it was lifted */
  previous?: FatalReason;
}

function stoppedKey(s: KeyStop, rows?: number): StoppedKey {
  return { platform: s.platform, key: s.key, variable: s.variable, status: s.status, ...(s.code !== undefined ? { code: s.code } : {}), ...(rows !== undefined ? { rows } : {}) };
}

export class FatalStop {
  private readonly key: string;
  readonly keys: KeyStops;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly queue: ReceiptsQueue,
  ) {
    this.key = new RedisKeys(prefix).fatal;
    this.keys = new KeyStops(redis, prefix, queue);
  }

  /** Records the reason (the first one wins) and pauses the queue for every worker. */
  async trip(reason: FatalReason): Promise<void> {
    await this.redis.set(this.key, JSON.stringify(reason), 'NX');
    await this.queue.pause();
  }

  async reason(): Promise<FatalReason | undefined> {
    const raw = await this.redis.get(this.key);
    return raw ? (JSON.parse(raw) as FatalReason) : undefined;
  }

  /** Forgets the queue-wide reason and resumes the queue (per-key stops are `resume`'s business). */
  async clear(): Promise<FatalReason | undefined> {
    const previous = await this.reason();
    await this.redis.del(this.key);
    await this.queue.resume();
    return previous;
  }

  /**
   * A fatal answer for one key: its rows stop for every process. When no key of this process (`ring`) can send
   * any more, the whole queue pauses with the first stop's reason, as it always did with one key.
   */
  async stopKey(stops: readonly KeyStop[], ring: KeyRing): Promise<void> {
    await this.keys.stop(stops);
    const first = stops[0];
    if (!first) return;
    const open = ring.platforms().filter((p) => {
      const info = ring.forPlatform(p);
      return info !== undefined && !this.keys.isStopped(p, info.fingerprint);
    });
    if (open.length === 0) {
      await this.trip({
        message: first.message,
        status: first.status,
        ...(first.code !== undefined ? { code: first.code } : {}),
        run: first.run,
        at: first.at,
        keys: stops.map((s) => stoppedKey(s)),
      });
    }
  }

  /**
   * Called when a sending process starts with (presumably) fixed configuration: lifts the stops it may lift,
   * sends back the parked rows it can send, and resumes the queue unless none of its keys may send.
   */
  async resume(ring: KeyRing): Promise<ResumeReport> {
    const report: ResumeReport = { replaced: [], retried: [], still: [], unparked: 0 };
    for (const stop of await this.keys.list()) {
      // The App Store lookups' stops are workers/appleLookup.ts's to lift (the ring holds no Apple key).
      if (stop.platform === APPLE_LOOKUP_LANE) continue;
      const mine = ring.forPlatform(stop.platform);
      if (!mine) continue;
      if (mine.fingerprint !== stop.fingerprint) report.replaced.push(stop);
      else if (stop.cause === 'key') report.still.push(stop);
      else {
        await this.keys.lift(stop.platform, stop.fingerprint);
        report.retried.push(stop);
      }
    }
    await this.keys.refresh();
    const open = ring.platforms().filter((p) => !this.keys.isStopped(p, ring.forPlatform(p)?.fingerprint ?? ''));
    if (open.length > 0) {
      const previous = await this.clear();
      if (previous) report.previous = previous;
      report.unparked = await this.keys.unpark(open);
    }
    return report;
  }

  /**
   * Why a run stands still: the queue-wide stop, or the stops of its keys once every row it still waits for
   * (`pending`) is parked behind them; undefined while it can go on.
   */
  async haltedBy(runId: string, pending: number): Promise<FatalReason | undefined> {
    const queueWide = await this.reason();
    if (queueWide) return queueWide;
    if (pending > 0 && (await this.keys.parkedCount(runId)) >= pending) return this.reasonFor(runId);
    return undefined;
  }

  /**
   * Why a run is stopped: the queue-wide reason when the queue is paused, else the stopped keys of its parked rows;
   * undefined when nothing holds it.
   */
  async reasonFor(runId: string): Promise<FatalReason | undefined> {
    const queueWide = await this.reason();
    if (queueWide) return queueWide;
    const parked = await this.keys.parkedByPlatform(runId);
    const platforms = Object.keys(parked) as StopLane[];
    if (platforms.length === 0) return undefined;
    const stops = await this.keys.list();
    const keys: StoppedKey[] = [];
    const messages: string[] = [];
    let first: KeyStop | undefined;
    for (const platform of platforms) {
      const rows = parked[platform] ?? 0;
      const own = stops.filter((s) => s.platform === platform).sort((a, b) => a.at.localeCompare(b.at));
      const latest = own[own.length - 1];
      if (!latest) {
        messages.push(`${rows} ${platform} rows are parked, but no key is stopped for them any more: run the same command again to send them`);
        continue;
      }
      first = first === undefined || latest.at < first.at ? latest : first;
      keys.push(stoppedKey(latest, rows));
      if (!messages.includes(latest.message)) messages.push(latest.message);
    }
    const total = platforms.reduce((n, p) => n + (parked[p] ?? 0), 0);
    const counts = platforms.map((p) => `${p}: ${parked[p] ?? 0}`).join(', ');
    const message = `${messages.join('. ')}. ${total} rows stay queued (${counts}) while the rows of the other keys went on; fix the key and run the same command again to send them.`;
    return {
      message,
      status: first?.status ?? 0,
      ...(first?.code !== undefined ? { code: first.code } : {}),
      run: first?.run ?? runId,
      at: first?.at ?? new Date().toISOString(),
      keys,
    };
  }
}
