// A Redis of a test's own, as a child process: for tests that stop, kill or restart Redis, which must never
// happen to the shared one. Append-only file on (fsync on every write) and no RDB snapshots, so a restart after
// SIGKILL replays the AOF and holds every write Redis acknowledged, as a production Redis with AOF would.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { until } from './until.js';

export interface PrivateRedis {
  url: string;
  port: number;
  /** the data directory (the AOF lives under it) */
  dir: string;
  /** Kills Redis (SIGKILL by default: no chance to write anything more) and waits until it is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and directory (the AOF is replayed) and waits until it answers PING. */
  start(): Promise<void>;
  /** kill(), then start() after `downMs`. */
  restart(downMs?: number): Promise<void>;
  /** Kills it and removes its directory. */
  stop(): Promise<void>;
}

// Should the test process end without stopping them, its Redis servers go with it.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** One PING over a raw socket: true on +PONG (a Redis still loading its AOF answers -LOADING). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** The process id of the Redis answering on `port` (INFO server), undefined when none answers. */
function serverPid(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (pid: number | undefined): void => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(2000, () => done(undefined));
    socket.on('error', () => done(undefined));
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      const match = /process_id:(\d+)/.exec(reply);
      if (match) done(Number(match[1]));
    });
  });
}

/** A free port in [first, last]: a test's own range, which no other test and no ephemeral port ever takes. */
export async function freePortIn(first: number, last: number): Promise<number> {
  for (let port = first; port <= last; port++) {
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (free) {
      server.close();
      await once(server, 'close');
      return port;
    }
  }
  throw new Error(`no free port in ${first}-${last}`);
}

/**
 * Where the data directories go: tmpfs when the machine has one, else the temp dir; PRIVATE_REDIS_TMPDIR overrides.
 * A Redis killed with SIGKILL loses nothing it had written (with appendfsync always it writes the AOF before it
 * replies, and the page cache outlives the process), so fsync to a real disk would only slow the tests down.
 */
function dataRoot(): string {
  return process.env.PRIVATE_REDIS_TMPDIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
}

export interface PrivateRedisOptions {
  dir?: string;
  /** a fixed port (a test's own range), instead of any free one */
  port?: number;
  /** more redis-server arguments; they come last, so they override the defaults (e.g. --appendonly no) */
  args?: string[];
}

export async function startPrivateRedis(opts: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const dir = opts.dir ?? (await mkdtemp(join(dataRoot(), 'rcm-redis-')));
  const port = opts.port ?? (await freePort());
  let child: ChildProcess | undefined;
  let log = '';

  const start = async (): Promise<void> => {
    if (child) throw new Error('private Redis is already running');
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        dir,
        '--maxmemory-policy',
        'noeviction',
        ...(opts.args ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    running.add(proc);
    proc.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    proc.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    proc.on('exit', () => {
      running.delete(proc);
      if (child === proc) child = undefined;
    });
    await until(
      `redis-server on port ${port} to answer PING`,
      async () => {
        if (child !== proc) throw new Error(`redis-server exited at start:\n${log}`);
        return ping(port);
      },
      { timeoutMs: 15_000, everyMs: 25, state: () => log },
    );
    // The port may have been taken while this Redis was down (a restart): the PONG must come from our process, or a
    // test would go on against another server's empty data and wait for rows that are not there.
    const answering = await serverPid(port);
    if (answering !== proc.pid) throw new Error(`port ${port} is answered by another Redis (pid ${String(answering)}), not the one started (pid ${String(proc.pid)}):\n${log}`);
  };

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
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
    kill,
    start,
    async restart(downMs = 0) {
      await kill();
      if (downMs > 0) await sleep(downMs);
      await start();
    },
    async stop() {
      await kill();
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
