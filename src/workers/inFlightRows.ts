// A row is not charged for its worker's death; a row that keeps killing the workers that take it is.
//
// BullMQ counts every stall against the job, whichever worker died, and fails it past `maxStalledCount`: in a
// crash-looping deployment the rows that happened to be active at the kills (often the ones waiting for their
// user's lock) failed although nothing was wrong with them. So BullMQ is told never to fail a job for stalling
// (receiptWorker.ts), and this module tells the two kinds of stall apart:
//
// - Each worker process has an id and a heartbeat key (RedisKeys.workerBeat), renewed several times per
//   heartbeat ttl. The ttl is under half the job lock's duration, so a dead (or hung) process's heartbeat is
//   gone before any of its jobs' locks can lapse and the stalled check can hand them to another process.
// - Right before a row's request goes, the row's in-flight hash (RedisKeys.inFlight, one small key per row in
//   flight) names this process as its sender (inFlightBegin-1.lua); when the request is over, whatever its
//   answer, the key is deleted (inFlightEnd-1.lua). A row that waits (its user's lock, a pacer slot, the
//   queue) has no sender named: a kill then costs it nothing.
// - A row that begins and finds another sender named had its request in flight when that process stopped
//   without a word. If that process's heartbeat is gone, it died (or hung) with the row in flight: one death is
//   counted on the row. If it still beats, the job lock was lost some other way (a Redis failover, a long
//   pause): nothing is counted.
// - A row in flight at `poisonStarts` deaths in a row is not sent again: it fails as `poison_row`. "In a row":
//   a request of the row that comes back (any answer) proves it did not kill its worker that time, and its count
//   starts again. An innocent row is in flight for one request's time (tens of ms) per attempt, so kills landing
//   on it at that many consecutive attempts are rare (more likely on a machine so starved that requests take
//   seconds: raise poisonStarts there); a row that crashes its worker is in flight at every one of them.
// - Except for the rows that died together: a process's rows in flight at its death come back together and are
//   taken together again, so a poison row's neighbours would be in flight at each of its deaths, and fail with
//   it (seen in the soak under load: one row falsely failed as poison_row). So a row that finds a death steps
//   aside for a random moment before its request goes (processor.ts): the rows of one death leave apart, and only
//   the row that kills is in flight at the next.
//
// Redis cost: the heartbeat per process, and per row one small hash that exists while its request is in flight,
// or after a death until the row is sent again; a finished row leaves nothing. Every hash also expires on its
// own (FLIGHT_TTL_MS), so that a run abandoned halfway leaves nothing behind for good.
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../redis/connection.js';
import { FLIGHT, RedisKeys } from '../redis/keys.js';
import { callScript } from '../redis/scripts.js';

/** How long a row's in-flight hash outlives its last request: longer than any wait for a retry. */
const FLIGHT_TTL_MS = 7 * 24 * 3600 * 1000;
/** Heartbeat ttl bounds: never longer than this, whatever the job lock, so a dead process is seen quickly. */
const MAX_HEARTBEAT_MS = 10_000;
const MIN_HEARTBEAT_MS = 300;

export interface InFlightOptions {
  /** BullMQ's job lock duration: the heartbeat must expire well before a dead process's locks do */
  lockDurationMs: number;
  /** a row in flight at this many worker deaths fails as poison_row */
  poisonStarts: number;
  /** this process's id (default: a random one) */
  workerId?: string;
}

/** What begin() learned: the deaths counted on the row so far, and whether that makes it a poison row. */
export interface FlightStart {
  deaths: number;
  poison: boolean;
  /** a death was counted by this call: the row's last sender died (or hung) with its request in flight */
  died: boolean;
}

/** The heartbeat ttl for a job lock duration: under half of it, within [MIN, MAX]. */
export function heartbeatTtlFor(lockDurationMs: number): number {
  return Math.max(MIN_HEARTBEAT_MS, Math.min(MAX_HEARTBEAT_MS, Math.floor(lockDurationMs / 3)));
}

export class InFlightRows {
  readonly workerId: string;
  readonly poisonStarts: number;
  private readonly keys: RedisKeys;
  private readonly beatMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    opts: InFlightOptions,
  ) {
    this.keys = new RedisKeys(prefix);
    this.workerId = opts.workerId ?? randomUUID();
    this.poisonStarts = opts.poisonStarts;
    this.beatMs = heartbeatTtlFor(opts.lockDurationMs);
  }

  /** Registers this process's heartbeat and keeps renewing it (4 times per ttl) until stop(). */
  async start(onError: (err: unknown) => void): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch(onError), Math.floor(this.beatMs / 4));
    // The heartbeat must not keep a process alive that has nothing else to do.
    this.timer.unref();
  }

  /** Stops the heartbeat. `gone`: also removes it (the process finished its requests and leaves). */
  async stop(gone: boolean): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    if (gone) await this.redis.del(this.keys.workerBeat(this.workerId));
  }

  private async beat(): Promise<void> {
    await this.redis.set(this.keys.workerBeat(this.workerId), String(Date.now()), 'PX', this.beatMs);
  }

  /**
   * The row's request is about to go: names this process as its sender, and counts one death when the previous
   * sender named is a process whose heartbeat is gone. `poison` when the row has now been in flight at
   * `poisonStarts` deaths: it must not be sent again.
   */
  async begin(jobId: string): Promise<FlightStart> {
    const key = this.keys.inFlight(jobId);
    const [previous, counted] = await callScript<[string, number]>(this.redis, 'inFlightBegin', [key], [this.workerId, FLIGHT_TTL_MS]);
    let deaths = Number(counted);
    let died = false;
    if (previous !== '' && previous !== this.workerId && (await this.redis.exists(this.keys.workerBeat(previous))) === 0) {
      deaths = await this.redis.hincrby(key, FLIGHT.deaths, 1);
      died = true;
    }
    return { deaths, poison: deaths >= this.poisonStarts, died };
  }

  /**
   * The row's request does not go yet after all: this process is no longer named as its sender (a death meanwhile
   * costs the row nothing), and the deaths counted on it stay.
   */
  async stepAside(jobId: string): Promise<void> {
    await this.redis.hdel(this.keys.inFlight(jobId), FLIGHT.worker);
  }

  /** The row's request is over (whatever its answer): it did not kill this process, and nothing of it stays. */
  async end(jobId: string): Promise<void> {
    await callScript(this.redis, 'inFlightEnd', [this.keys.inFlight(jobId)], [this.workerId]);
  }

  /** The row finished without a request of this process (a poison row, a failed job): nothing of it stays. */
  async forget(jobId: string): Promise<void> {
    await this.redis.del(this.keys.inFlight(jobId));
  }
}
