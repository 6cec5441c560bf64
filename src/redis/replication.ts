// Writes that must survive a Redis Cluster failover before the tool goes on. Redis replicates asynchronously:
// a master acknowledges a write before its replica has it, and a master that dies in that moment takes the write
// with it when its replica is promoted. On one master that loses only the last few milliseconds of a consistent
// history. On a cluster, the tool's writes depend on each other across masters: a row's answer is written to its
// ledger shard, then its job is completed in the queue (another master); rows are admitted into the ledger, then
// queued, then the ingest's progress passes them. Should the first master lose its write while the second keeps
// its own, a row stays pending forever (its job is gone) or is counted answered without being admitted.
//
// So on a cluster, each such write is followed by WAIT on the master that took it: it returns once a replica has
// every write that master took so far. Rows finishing at the same moment share one WAIT per master. When the
// master changed meanwhile (a failover), the write is done again on the new master: every write passed here is
// idempotent, or passes a `replay` that is. When no replica answers in time while the master stays (a replica
// far behind), the tool goes on with what Redis itself guarantees and says so once ('lagging'); a master with no
// replica connected is not waited for (no replica could take its slots: its data comes back with it). On one
// Redis node there is nothing to wait for: `durable` is the write alone.
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from 'ioredis';
import { isCluster, type RedisClient } from './connection.js';
import { keySlot } from './keys.js';

/** How long one WAIT waits for a replica (a healthy one answers within milliseconds). */
export const REPLICA_WAIT_MS = 1000;
/** Failovers during one write after which it gives up (each means a master died under it). */
const MAX_REPLAYS = 5;
/** A WAIT that failed is sent again after this long, up to MAX_WAIT_ERRORS times (a minute: a failover's time). */
const WAIT_RETRY_MS = 500;
const MAX_WAIT_ERRORS = 120;

/** What became of a write once the barrier returned. */
export type Replicated = 'replicated' | 'no-replica' | 'lagging' | 'failover';

/** What a master said about its replicas. */
interface Answer {
  /** replicas connected to it (ROLE) */
  connected: number;
  /** replicas that acknowledged its writes so far (WAIT), when waited for */
  acked?: number;
}

interface Batch {
  /** a key of the master's slots, which routes the question there */
  key: string;
  /** WAIT for a replica (else only ROLE) */
  wait: boolean;
  promise: Promise<Answer>;
  resolve: (answer: Answer) => void;
  reject: (err: Error) => void;
}

interface MasterState {
  inFlight: boolean;
  /** writers waiting for the next question to this master */
  next?: Batch;
}

export interface ReplicationEvents {
  /** a master whose replica did not acknowledge within REPLICA_WAIT_MS: writes there may be lost if it dies */
  lagging: [master: string];
  /** a master whose replica acknowledges again */
  recovered: [master: string];
  /** a master changed under a write, which was done again on the new one (once per master replaced) */
  failover: [master: string];
}

/** The replication barrier of one cluster connection (see `replication`). */
export class ReplicationBarrier extends EventEmitter<ReplicationEvents> {
  private readonly masters = new Map<string, MasterState>();
  private readonly lagging = new Set<string>();
  /** masters seen replaced, each announced once */
  private readonly failedOver = new Set<string>();

  constructor(
    private readonly cluster: Cluster,
    private readonly waitMs = REPLICA_WAIT_MS,
  ) {
    super();
  }

  /** The master serving a key's slot now, and whether it has a replica, as the connection's slot map says. */
  private route(key: string): { master: string | undefined; replicas: number } {
    const nodes = this.cluster.slots[keySlot(key)];
    return { master: nodes?.[0], replicas: nodes ? nodes.length - 1 : 0 };
  }

  /**
   * Runs `write` (whose keys are in the slot of `key`) and returns its result once a replica of the master that
   * took it has it too. A failover meanwhile runs `replay` (default: `write` again) on the new master.
   */
  async durable<T>(key: string, write: () => Promise<T>, replay: () => Promise<unknown> = write): Promise<T> {
    let master = this.route(key).master;
    const result = await write();
    // Before the connection knew the slot map, the write went wherever the map sent it once known.
    master ??= this.route(key).master;
    for (let replays = 0; ; replays++) {
      if ((await this.confirm(key, master)) !== 'failover') return result;
      if (replays >= MAX_REPLAYS) throw new Error(`Redis Cluster: the master serving ${key} changed ${replays + 1} times during one write`);
      if (master !== undefined && !this.failedOver.has(master)) {
        this.failedOver.add(master);
        this.emit('failover', master);
      }
      master = this.route(key).master;
      await replay();
    }
  }

  /**
   * Whether the writes made so far to `master` (the master of `key` when they were made) reached a replica.
   * The master is asked even when the connection's slot map lists no replica for it (the map may be older than a
   * replica that joined since), which also shows whether it still answers. A question that fails says nothing
   * (the master may have died, or only the network hiccuped): it is asked again until it answers from that
   * master, or the slot map shows another master (a failover: the write may be lost).
   */
  async confirm(key: string, master: string | undefined): Promise<Replicated> {
    let wait: boolean | undefined;
    for (let errors = 0; ;) {
      const now = this.route(key);
      if (now.master === undefined) return 'no-replica';
      if (now.master !== master) return 'failover';
      let answer: Answer | undefined;
      let failure: unknown;
      try {
        answer = await this.ask(master, key, wait ?? now.replicas > 0);
      } catch (err) {
        failure = err;
      }
      if (this.route(key).master !== master) return 'failover';
      if (answer) {
        if (answer.acked !== undefined && answer.acked >= 1) return this.note(master, true);
        // No replica connected: none to wait for, and none that could take the master's slots.
        if (answer.connected === 0) return 'no-replica';
        // A replica the slot map did not list yet: ask again, waiting for it this time.
        if (answer.acked === undefined) {
          wait = true;
          continue;
        }
        return this.note(master, false);
      }
      if (++errors > MAX_WAIT_ERRORS) throw new Error(`Redis Cluster: no answer from ${master} to WAIT (${(failure as Error).message})`);
      // The connection refreshes its slot map after a broken connection or a redirection: a failover shows there.
      await sleep(WAIT_RETRY_MS);
    }
  }

  private note(master: string, replicated: boolean): Replicated {
    if (replicated) {
      if (this.lagging.delete(master)) this.emit('recovered', master);
      return 'replicated';
    }
    if (!this.lagging.has(master)) {
      this.lagging.add(master);
      this.emit('lagging', master);
    }
    return 'lagging';
  }

  /**
   * ROLE (its connected replicas) and, when `wait`, WAIT 1 on `master`, shared: writers that ask while one
   * question is out there join the next one, which is sent when it returns (so that it covers their writes too).
   * WAIT covers the connection's earlier writes, and a cluster connection has one connection per master, which
   * every command to it uses.
   */
  private ask(master: string, key: string, wait: boolean): Promise<Answer> {
    let state = this.masters.get(master);
    if (!state) {
      state = { inFlight: false };
      this.masters.set(master, state);
    }
    if (state.next) {
      state.next.wait ||= wait;
      return state.next.promise;
    }
    let resolve!: (answer: Answer) => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<Answer>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    state.next = { key, wait, promise, resolve, reject };
    // Sent on the next turn of the event loop at the earliest: the writers finishing in this one join it.
    if (!state.inFlight) setImmediate(() => this.send(master));
    return promise;
  }

  private send(master: string): void {
    const state = this.masters.get(master);
    const batch = state?.next;
    if (!state || !batch || state.inFlight) return;
    state.next = undefined;
    state.inFlight = true;
    // A keyed command first, so that the pipeline goes to the master of that key's slot.
    const pipeline = this.cluster.pipeline().exists(batch.key).call('ROLE');
    if (batch.wait) pipeline.call('WAIT', 1, this.waitMs);
    pipeline
      .exec()
      .then(
        (replies) => {
          const failed = (replies ?? []).find(([err]) => err)?.[0];
          if (failed || !replies) return batch.reject(failed ?? new Error('no reply'));
          const role = replies[1]?.[1] as [string, number, unknown[]?] | undefined;
          // A node that is no longer a master (the slot map is behind): asked again once the map has caught up.
          if (role?.[0] !== 'master') return batch.reject(new Error(`${master} is not a master`));
          const connected = Array.isArray(role[2]) ? role[2].length : 0;
          batch.resolve(batch.wait ? { connected, acked: Number(replies[2]?.[1]) } : { connected });
        },
        (err: Error) => batch.reject(err),
      )
      .finally(() => {
        state.inFlight = false;
        if (state.next) setImmediate(() => this.send(master));
      });
  }
}

// One barrier per cluster connection, for as long as the connection lives.
const barriers = new WeakMap<Cluster, ReplicationBarrier>();

/** The replication barrier of a cluster connection; undefined for one node (nothing to wait for). */
export function replication(redis: RedisClient): ReplicationBarrier | undefined {
  if (!isCluster(redis)) return undefined;
  let barrier = barriers.get(redis);
  if (!barrier) {
    barrier = new ReplicationBarrier(redis);
    barriers.set(redis, barrier);
  }
  return barrier;
}

/**
 * Runs `write` (keys in the slot of `key`) so that it survives a failover of its master before the caller goes
 * on (see the top of this file); on one node, just runs it. `write`, or `replay` when given, must be safe to run
 * twice.
 */
export function durable<T>(redis: RedisClient, key: string, write: () => Promise<T>, replay?: () => Promise<unknown>): Promise<T> {
  const barrier = replication(redis);
  return barrier ? barrier.durable(key, write, replay) : write();
}
