// Commands issued together, written together. ioredis writes each command to its socket as it is issued: one
// system call (and one wake-up of Redis) per command. A chunk of the ingester issues dozens at once (a script
// call per ledger shard to admit it, one per superseded row), and those writes were a tenth of what an ingest of
// App Store rows cost its main thread. Corking the sockets until the event loop's next turn gathers every command
// issued meanwhile into one write per socket; nothing waits longer than that turn.
import type { Socket } from 'node:net';
import { isCluster, type RedisClient } from './connection.js';

/** The sockets a connection writes to: its own, or each cluster node's. */
function socketsOf(redis: RedisClient): Socket[] {
  const nodes = isCluster(redis) ? redis.nodes() : [redis];
  const sockets: Socket[] = [];
  for (const node of nodes) {
    const stream = (node as unknown as { stream?: Socket }).stream;
    if (stream && typeof stream.cork === 'function' && !stream.destroyed) sockets.push(stream);
  }
  return sockets;
}

// Connections corked until the next turn, so that a second call in the same turn does not cork them twice.
const corkedNow = new WeakSet<object>();

/** Corks the connection's sockets until the event loop's next turn (setImmediate); idempotent within a turn. */
export function writeTogether(redis: RedisClient): void {
  if (corkedNow.has(redis)) return;
  const sockets = socketsOf(redis);
  if (sockets.length === 0) return;
  corkedNow.add(redis);
  for (const socket of sockets) socket.cork();
  setImmediate(() => {
    corkedNow.delete(redis);
    for (const socket of sockets) socket.uncork();
  });
}
