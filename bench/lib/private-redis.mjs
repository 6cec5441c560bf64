// A Redis of the benchmark's own, as a child process, for scenarios that kill and restart Redis (never the shared
// one): the .mjs twin of test/support/privateRedis.ts. Append-only file on (fsync on every write), no RDB
// snapshots, so a restart after SIGKILL replays the AOF and holds every write Redis acknowledged.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sleep } from './util.mjs';

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** One INFO over a raw socket: the pid of the Redis answering on `port` once it serves (not -LOADING), else undefined. */
function servingPid(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (pid) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(2000, () => done(undefined));
    socket.on('error', () => done(undefined));
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.startsWith('-')) return done(undefined);
      const m = /process_id:(\d+)/.exec(reply);
      if (m) done(Number(m[1]));
    });
  });
}

/** Starts redis-server on a free port with AOF on; `kill()`, `start()` (same port and directory: the AOF is replayed), `stop()`. */
export async function startPrivateRedis({ args = [] } = {}) {
  const dir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'rcm-soak-redis-'));
  const port = await freePort();
  let child;
  let log = '';
  const start = async () => {
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir, '--maxmemory-policy', 'noeviction', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    running.add(proc);
    const keep = (d) => (log = (log + d.toString()).slice(-4000));
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    proc.on('exit', () => {
      running.delete(proc);
      if (child === proc) child = undefined;
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const pid = await servingPid(port);
      if (pid === proc.pid) return;
      if (pid !== undefined) throw new Error(`port ${port} is answered by another Redis (pid ${pid})`);
      if (child !== proc) throw new Error(`redis-server exited at start:\n${log}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not serve within 60 s:\n${log}`);
      await sleep(25);
    }
  };
  const kill = async (signal = 'SIGKILL') => {
    const proc = child;
    if (!proc) return;
    const exited = once(proc, 'exit');
    proc.kill(signal);
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    pid: () => child?.pid,
    kill,
    start,
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
