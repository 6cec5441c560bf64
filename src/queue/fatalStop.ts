// A fatal API answer (bad key, bad store credentials) means every further request would fail the same way.
// The first worker that sees one pauses the whole queue and leaves the reason here, so that every process,
// on every machine, stops sending and `run` can tell the user what to fix.
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connection.js';
import { RedisKeys } from '../redis/keys.js';

export interface FatalReason {
  message: string;
  status: number;
  code?: number;
  run: string;
  at: string;
}

export class FatalStop {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly queue: Queue,
  ) {
    this.key = new RedisKeys(prefix).fatal;
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

  /** Called when a process starts with (presumably) fixed configuration: forget the reason and resume. */
  async clear(): Promise<FatalReason | undefined> {
    const previous = await this.reason();
    await this.redis.del(this.key);
    await this.queue.resume();
    return previous;
  }
}
