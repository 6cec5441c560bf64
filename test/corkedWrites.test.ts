// Commands issued together leave together (src/redis/corkedWrites.ts), and a second connection of a command's
// Redis (anotherConnection) is a connection of its own: what the ingester relies on to admit a chunk in one write
// and to keep the ledger's calls from being answered behind the queue's jobs.
import type { Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { anotherConnection, redisOptions } from '../src/redis/connection.js';
import { writeTogether } from '../src/redis/corkedWrites.js';
import { redisScope, redisUrl } from './support/redis.js';

const scope = redisScope();
afterAll(() => scope.close());

/** Counts the socket's writes to the kernel: one `_writev` for corked writes, one `_write` per uncorked command. */
function countWrites(socket: Socket): { writes: () => number } {
  let n = 0;
  const s = socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write = s._write.bind(socket);
  const writev = s._writev.bind(socket);
  s._write = (...a) => {
    n++;
    write(...a);
  };
  s._writev = (...a) => {
    n++;
    writev(...a);
  };
  return { writes: () => n };
}

async function connected(): Promise<Redis> {
  const redis = new Redis(redisUrl(), redisOptions());
  await redis.ping();
  return redis;
}

describe('writeTogether', () => {
  it('sends the commands of one turn in one write, answered each in order', async () => {
    const redis = await connected();
    try {
      const prefix = scope.prefix('cork');
      const socket = (redis as unknown as { stream: Socket }).stream;
      const counted = countWrites(socket);
      writeTogether(redis);
      writeTogether(redis); // a second call in the same turn corks nothing more
      const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => redis.incrby(`${prefix}:n`, i + 1)));
      expect(counted.writes()).toBe(1);
      // in order: each INCRBY saw the ones issued before it
      expect(answers).toEqual(Array.from({ length: 16 }, (_, i) => ((i + 1) * (i + 2)) / 2));

      // the next turn's commands are not held: without writeTogether, one write each
      const before = counted.writes();
      await Promise.all([redis.get(`${prefix}:n`), redis.get(`${prefix}:n`)]);
      expect(counted.writes() - before).toBe(2);
    } finally {
      redis.disconnect();
    }
  });

  it('holds commands issued in later microtasks of the same turn too (an await between them)', async () => {
    const redis = await connected();
    try {
      const prefix = scope.prefix('cork-later');
      const counted = countWrites((redis as unknown as { stream: Socket }).stream);
      writeTogether(redis);
      const first = redis.set(`${prefix}:a`, '1');
      await Promise.resolve();
      const second = redis.set(`${prefix}:b`, '2');
      expect(await Promise.all([first, second])).toEqual(['OK', 'OK']);
      expect(counted.writes()).toBe(1);
    } finally {
      redis.disconnect();
    }
  });

  it('does nothing on a connection without a socket yet (a lazy one): its commands still go', async () => {
    const redis = new Redis(redisUrl(), redisOptions({ lazyConnect: true }));
    try {
      writeTogether(redis);
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
    }
  });
});

describe('anotherConnection', () => {
  it('is a connection of its own to the same Redis, with the same options', async () => {
    const redis = await connected();
    const other = anotherConnection(redis);
    try {
      const prefix = scope.prefix('other');
      await redis.set(`${prefix}:k`, 'v');
      expect(await other.get(`${prefix}:k`)).toBe('v');
      const ids = await Promise.all([redis.client('ID'), other.client('ID')]);
      expect(ids[0]).not.toBe(ids[1]);
      expect((other as Redis).options.maxRetriesPerRequest).toBeNull();
      // a blocked command on the first does not hold the other's answers back
      const blocked = redis.blpop(`${prefix}:empty`, 1);
      expect(await other.ping()).toBe('PONG');
      expect(await blocked).toBeNull();
    } finally {
      other.disconnect();
      redis.disconnect();
    }
  });
});
