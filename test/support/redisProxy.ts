// A TCP proxy in front of the test Redis, for tests that cut some of a process's Redis connections without touching
// the shared Redis: it can drop the connections that are blocking ones (BullMQ's worker waits for jobs with
// BZPOPMIN on a connection of its own) and refuse new connections for a while, so that those clients sit in
// ioredis's "reconnecting" state as they would during a Redis restart, while the others go on working.
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';

export interface RedisProxy {
  /** redis://127.0.0.1:<port> of the proxy */
  url: string;
  /** How many open client connections have sent BZPOPMIN so far. */
  blocking(): number;
  /** Drops every open connection that has sent BZPOPMIN, and refuses new connections until `admit()`. */
  cutBlocking(): number;
  /** Accepts new connections again. */
  admit(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  server: Socket;
  /** the end of the client's bytes so far, upper-cased: a command name split between two reads is still found */
  tail: string;
  /** it has sent BZPOPMIN */
  blocking: boolean;
}

export async function startRedisProxy(target: string): Promise<RedisProxy> {
  const { hostname, port } = new URL(target);
  const pairs = new Set<Pair>();
  let refusing = false;
  const proxy = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const server = connect({ host: hostname, port: Number(port) });
    const pair: Pair = { client, server, tail: '', blocking: false };
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('data', (d: Buffer) => {
      const text = pair.tail + d.toString('latin1').toUpperCase();
      pair.blocking ||= text.includes('BZPOPMIN');
      pair.tail = text.slice(-16);
      server.write(d);
    });
    server.on('data', (d: Buffer) => client.write(d));
    client.on('close', drop);
    server.on('close', drop);
    client.on('error', drop);
    server.on('error', drop);
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const address = proxy.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  const blocking = (): Pair[] => [...pairs].filter((p) => p.blocking);
  return {
    url: `redis://127.0.0.1:${address.port}`,
    blocking: () => blocking().length,
    cutBlocking() {
      refusing = true;
      const cut = blocking();
      for (const p of cut) {
        p.client.destroy();
        p.server.destroy();
      }
      return cut.length;
    },
    admit() {
      refusing = false;
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.server.destroy();
      }
      proxy.close();
      await once(proxy, 'close');
    },
  };
}
