// A real Redis Cluster of a test's own: six `redis-server --cluster-enabled yes` nodes on loopback ports
// 7100–7199, joined by `redis-cli --cluster create … --cluster-replicas 1` into three masters with one replica
// each. Tests can kill a master with SIGKILL and wait until its replica has taken over its slots.
//
// Everything here is built to survive a busy two-core machine shared with other test files: ports are probed
// and re-picked when another process takes them first, the create is retried on nodes that were not ready,
// every wait is generous and polls rather than sleeps a fixed time, and nodes left behind by a test process
// that died without stopping them are reaped by the next start.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { until } from './until.js';

const HOST = '127.0.0.1';
/** The private port range of these clusters; a node's cluster bus listens on its port + 10000. */
const PORT_MIN = 7100;
const PORT_MAX = 7199;
const NODES = 6;
const DIR_PREFIX = 'rcm-cluster-';

export interface ClusterNodeAddress {
  host: string;
  port: number;
}

export interface StartRedisClusterOptions {
  /**
   * cluster-node-timeout: how long a master may be silent before the others declare it failed and its replica
   * is promoted. 2 s by default (Redis's is 15 s) so a killed master is replaced within a few seconds.
   */
  nodeTimeoutMs?: number;
  /** Extra `redis-server` arguments for every node, e.g. ['--maxmemory', '20mb']. */
  extraArgs?: string[];
  /** How long to wait for the whole cluster to come up (default 120 s: six processes on a busy machine). */
  startTimeoutMs?: number;
}

export interface RedisClusterHandle {
  /** Every node's address, as started (masters and replicas alike): the seed nodes of a client. */
  readonly nodes: ClusterNodeAddress[];
  /** The seed nodes as REDIS_CLUSTER_NODES wants them: "127.0.0.1:7101,127.0.0.1:7102,…". */
  readonly seeds: string;
  /** The root folder of the nodes' data directories. */
  readonly dir: string;
  /** The ports of the current masters (as the live nodes see it), ascending. */
  masters(): Promise<number[]>;
  /** The port of the master that serves a key's slot now. */
  masterOf(key: string): Promise<number>;
  /** The ports of the live replicas of the master on `port`. */
  replicasOf(port: number): Promise<number[]>;
  /**
   * SIGKILLs the master on `port` (default: the master of slot 0) and waits until its replica has been
   * promoted: every live node says cluster_state:ok and maps the killed master's slots to the new master.
   * Returns the killed and the promoted node's ports.
   */
  killMaster(port?: number, timeoutMs?: number): Promise<{ killed: number; promoted: number }>;
  /** Starts a killed node again on its port and data directory; it rejoins (as a replica) and syncs. */
  restartNode(port: number, timeoutMs?: number): Promise<void>;
  /** Waits until every live node says cluster_state:ok and they agree who serves each slot. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Kills every node and removes the data directories. Safe to call twice. */
  stop(): Promise<void>;
}

// Should the test process end without stopping them, its nodes go with it (exit handlers do not run on
// SIGKILL of the test process: the reaper below covers that case on the next start).
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** The major version of the installed redis-server. */
function redisMajor(): number {
  const out = execFileSync('redis-server', ['--version'], { encoding: 'utf8' });
  return Number(/v=(\d+)\./.exec(out)?.[1] ?? 0);
}

function dataRoot(): string {
  return process.env.PRIVATE_REDIS_TMPDIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Kills the nodes of clusters whose test process is gone (it was SIGKILLed, or vitest killed its fork on a
 * timeout), and removes their folders. A pid is only killed when /proc shows it is still a redis-server
 * started from that very folder, so a recycled pid is never touched.
 */
function reapOrphans(root: string): void {
  let entries: string[];
  try {
    entries = readdirSync(root).filter((e) => e.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const entry of entries) {
    const dir = join(root, entry);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
    } catch {
      continue; // being created right now, or not one of ours
    }
    if (!Number.isInteger(owner) || owner <= 0 || alive(owner)) continue;
    for (const sub of readdirSync(dir)) {
      try {
        const pid = Number(readFileSync(join(dir, sub, 'redis.pid'), 'utf8'));
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmdline.includes('redis-server') && cmdline.includes(join(dir, sub))) process.kill(pid, 'SIGKILL');
      } catch {
        /* no pid file or process already gone */
      }
    }
    void rm(dir, { recursive: true, force: true });
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** A port in 7100–7199 that is free, with its bus port (+10000) free too, and not in `taken`. */
async function pickPort(taken: Set<number>): Promise<number> {
  const candidates: number[] = [];
  for (let p = PORT_MIN; p <= PORT_MAX; p++) if (!taken.has(p)) candidates.push(p);
  // Random order: test files starting at the same moment rarely probe the same ports.
  for (let i = candidates.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [candidates[i], candidates[j]] = [candidates[j] as number, candidates[i] as number];
  }
  for (const port of candidates) {
    if ((await portFree(port)) && (await portFree(port + 10_000))) return port;
  }
  throw new Error(`no free port pair in ${PORT_MIN}–${PORT_MAX} (and +10000) for a Redis Cluster node`);
}

/** One short-lived admin connection to one node (never a cluster client: we want that node's own view). */
async function withNode<T>(port: number, fn: (r: Redis) => Promise<T>, timeoutMs = 5000): Promise<T> {
  const r = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

async function tryNode<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T | undefined> {
  try {
    return await withNode(port, fn);
  } catch {
    return undefined;
  }
}

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

interface NodeLine {
  id: string;
  port: number;
  master: boolean;
  failed: boolean;
  masterId: string | undefined;
  slots: string[];
}

/** Parses CLUSTER NODES: "<id> <ip:port@bus> <flags> <master-id|-> <ping> <pong> <epoch> <link> <slots…>". */
function parseNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const parts = line.trim().split(' ');
      const flags = (parts[2] ?? '').split(',');
      const port = Number(/:(\d+)@/.exec(parts[1] ?? '')?.[1]);
      return {
        id: parts[0] ?? '',
        port,
        master: flags.includes('master'),
        failed: flags.includes('fail') || flags.includes('fail?'),
        masterId: parts[3] === '-' ? undefined : parts[3],
        slots: parts.slice(8),
      };
    });
}

type SlotRange = [from: number, to: number, masterPort: number];

/** Slot ranges and their masters' ports, from one node's CLUSTER SLOTS, in slot order. */
async function slotRanges(port: number): Promise<SlotRange[] | undefined> {
  const slots = await tryNode(port, (r) => r.cluster('SLOTS'));
  if (!slots) return undefined;
  const ranges: SlotRange[] = [];
  for (const [from, to, master] of slots) if (master) ranges.push([from, to, master[1]]);
  return ranges.sort((a, b) => a[0] - b[0]);
}

function ownerOf(ranges: SlotRange[], slot: number): number | undefined {
  return ranges.find(([from, to]) => slot >= from && slot <= to)?.[2];
}

class Node {
  child: ChildProcess | undefined;
  log = '';
  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
  ) {}

  /** Spawns redis-server and waits for PING; false when it exited at once (e.g. the port was taken meanwhile). */
  async start(timeoutMs: number): Promise<boolean> {
    if (this.child) throw new Error(`node ${this.port} is already running`);
    await mkdir(this.dir, { recursive: true });
    const proc = spawn(
      'redis-server',
      ['--port', String(this.port), ...this.args, '--dir', this.dir, '--cluster-config-file', join(this.dir, 'nodes.conf'), '--pidfile', join(this.dir, 'redis.pid')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = proc;
    running.add(proc);
    const keep = (d: Buffer): void => {
      this.log = (this.log + d.toString()).slice(-4000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.on('exit', () => {
      running.delete(proc);
      if (this.child === proc) this.child = undefined;
    });
    try {
      const state = await until(
        `redis-server on port ${this.port} to answer PING`,
        async () => (this.child !== proc ? 'exited' : (await tryNode(this.port, (r) => r.ping())) === 'PONG' ? 'up' : undefined),
        { timeoutMs, state: () => this.log },
      );
      return state === 'up';
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  async kill(): Promise<void> {
    const proc = this.child;
    if (!proc) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
  }
}

function runRedisCli(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const proc = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(proc);
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-8000)));
    proc.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-8000)));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      running.delete(proc);
      resolve({ code, output });
    });
  });
}

export async function startRedisCluster(opts: StartRedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? 2000;
  const startTimeoutMs = opts.startTimeoutMs ?? 120_000;
  const startDeadline = Date.now() + startTimeoutMs;
  const left = (): number => Math.max(1000, startDeadline - Date.now());
  const root = dataRoot();
  reapOrphans(root);
  const dir = await mkdtemp(join(root, DIR_PREFIX));
  await writeFile(join(dir, 'owner.pid'), String(process.pid));

  const args = [
    '--bind',
    HOST,
    '--cluster-enabled',
    'yes',
    '--cluster-node-timeout',
    String(nodeTimeoutMs),
    // A replica may always take over, however long it has been since it last heard from its master: on a
    // loaded machine the "data age" check would otherwise veto a failover the test is waiting for.
    '--cluster-replica-validity-factor',
    '0',
    '--save',
    '',
    '--appendonly',
    'yes',
    '--maxmemory-policy',
    'noeviction',
    // Masters ping their replicas every second (10 s by default): the replication offset moves past 0 at once,
    // so CLUSTER SLOTS lists the replicas of a fresh, empty cluster as it does those of one in use.
    '--repl-ping-replica-period',
    '1',
    // Tests may make a node unresponsive for a moment (DEBUG SLEEP) from loopback (Redis 7 refuses DEBUG unless
    // told; Redis 6 allows it and knows no such option).
    ...(redisMajor() >= 7 ? ['--enable-debug-command', 'local'] : []),
    ...(opts.extraArgs ?? []),
  ];

  const nodes: Node[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(nodes.map((n) => n.kill()));
    await rm(dir, { recursive: true, force: true });
  };

  try {
    // Start six nodes; a port grabbed by someone else between the probe and the bind is replaced.
    const taken = new Set<number>();
    while (nodes.length < NODES) {
      const port = await pickPort(taken);
      taken.add(port);
      const node = new Node(port, join(dir, String(port)), args);
      if (await node.start(left())) nodes.push(node);
    }
    const ports = nodes.map((n) => n.port);

    const describe = async (): Promise<string> => {
      const lines: string[] = [];
      for (const p of ports) {
        const info = await tryNode(p, (r) => r.cluster('INFO'));
        lines.push(
          `  ${p}: ${info ? `state=${infoField(info, 'cluster_state')} known=${infoField(info, 'cluster_known_nodes')} slots=${infoField(info, 'cluster_slots_assigned')}` : 'no answer'}`,
        );
      }
      return lines.join('\n');
    };

    // Join them. On a busy machine redis-cli may give up on a node that is slow to answer or to gossip:
    // reset every node to an empty, unjoined state and try again.
    let lastOutput = '';
    for (let attempt = 1; ; attempt++) {
      const { code, output } = await runRedisCli(
        ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', '1', '--cluster-yes'],
        Math.min(left(), 90_000),
      );
      lastOutput = output;
      if (code === 0) {
        try {
          await waitHealthy(ports, Math.min(left(), 60_000), true);
          break;
        } catch (err) {
          lastOutput += `\n${(err as Error).message}`;
        }
      }
      if (attempt >= 3 || Date.now() > startDeadline) {
        throw new Error(`redis-cli --cluster create failed ${attempt}× (last exit ${code}):\n${lastOutput.slice(-3000)}\n${await describe()}`);
      }
      for (const p of ports) {
        await tryNode(p, async (r) => {
          await r.flushall();
          await r.cluster('RESET', 'HARD');
        });
      }
      await sleep(500 * attempt);
    }

    const byPort = new Map(nodes.map((n) => [n.port, n]));
    const livePorts = (): number[] => nodes.filter((n) => n.child !== undefined).map((n) => n.port);

    const handle: RedisClusterHandle = {
      nodes: ports.map((port) => ({ host: HOST, port })),
      seeds: ports.map((p) => `${HOST}:${p}`).join(','),
      dir,
      async masters() {
        for (const p of livePorts()) {
          const text = await tryNode(p, (r) => r.cluster('NODES') as Promise<string>);
          if (text)
            return parseNodes(text)
              .filter((n) => n.master && !n.failed && n.slots.length > 0)
              .map((n) => n.port)
              .sort((a, b) => a - b);
        }
        throw new Error('Redis Cluster: no live node answers');
      },
      async masterOf(key) {
        for (const p of livePorts()) {
          const found = await tryNode(p, async (r) => {
            const slot = Number(await r.cluster('KEYSLOT', key));
            const ranges = await slotRanges(p);
            return ranges && ownerOf(ranges, slot);
          });
          if (found !== undefined) return found;
        }
        throw new Error('Redis Cluster: no live node answers');
      },
      async replicasOf(port) {
        for (const p of livePorts()) {
          const text = await tryNode(p, (r) => r.cluster('NODES') as Promise<string>);
          if (!text) continue;
          const view = parseNodes(text);
          const master = view.find((n) => n.port === port);
          if (!master) throw new Error(`Redis Cluster: ${port} is not a node of this cluster`);
          return view.filter((n) => n.masterId === master.id && !n.failed).map((n) => n.port);
        }
        throw new Error('Redis Cluster: no live node answers');
      },
      async killMaster(port, timeoutMs = 60_000) {
        const live = livePorts();
        const view = await until(
          'a node that lists the cluster',
          async () => {
            for (const p of live) {
              const text = await tryNode(p, (r) => r.cluster('NODES') as Promise<string>);
              if (text) return parseNodes(text);
            }
            return undefined;
          },
          { timeoutMs: 10_000 },
        );
        const victim = port === undefined ? view.find((n) => n.master && n.slots.some((s) => s === '0' || s.startsWith('0-'))) : view.find((n) => n.port === port);
        if (!victim || !victim.master) throw new Error(`Redis Cluster: ${port ?? 'slot 0'} is not served by a live master`);
        const replicas = view.filter((n) => n.masterId === victim.id && !n.failed).map((n) => n.port);
        if (replicas.length === 0) throw new Error(`Redis Cluster: master ${victim.port} has no replica to take over`);
        // The first slot of each range the victim serves: after the failover, each must be served by one replica.
        const ownSlots = ((await slotRanges(victim.port)) ?? []).filter(([, , p]) => p === victim.port).map(([from]) => from);
        if (ownSlots.length === 0) throw new Error(`Redis Cluster: master ${victim.port} serves no slot`);
        const node = byPort.get(victim.port);
        if (!node) throw new Error(`Redis Cluster: ${victim.port} is not one of this cluster's nodes`);
        await node.kill();
        const promoted = await until(
          `promotion of a replica of ${victim.port}`,
          async () => {
            const survivors = livePorts();
            let newMaster: number | undefined;
            for (const p of survivors) {
              const info = await tryNode(p, (r) => r.cluster('INFO'));
              if (!info || infoField(info, 'cluster_state') !== 'ok') return undefined;
              const ranges = await slotRanges(p);
              if (!ranges) return undefined;
              for (const s of ownSlots) {
                const owner = ownerOf(ranges, s);
                if (owner === undefined || owner === victim.port || !replicas.includes(owner)) return undefined;
                if (newMaster !== undefined && owner !== newMaster) return undefined;
                newMaster = owner;
              }
            }
            return newMaster;
          },
          { timeoutMs: timeoutMs, state: () => `replicas ${replicas.join(', ')}` },
        );
        return { killed: victim.port, promoted };
      },
      async restartNode(port, timeoutMs = 60_000) {
        const node = byPort.get(port);
        if (!node) throw new Error(`Redis Cluster: ${port} is not one of this cluster's nodes`);
        if (!(await node.start(timeoutMs))) throw new Error(`redis-server on port ${port} exited at restart:\n${node.log}`);
        await waitHealthy(livePorts(), timeoutMs, livePorts().length === NODES);
      },
      waitHealthy: (timeoutMs = 60_000) => waitHealthy(livePorts(), timeoutMs, livePorts().length === NODES),
      stop,
    };
    return handle;
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Every node in `ports` says cluster_state:ok, all slots assigned, and they all agree who serves each slot.
 * With `replicasSynced`, also three masters and three replicas known to each node, and every replica's link
 * to its master up (so that killing a master finds a replica with its data).
 */
async function waitHealthy(ports: number[], timeoutMs: number, replicasSynced: boolean): Promise<void> {
  let last = '';
  await until(
    'cluster_state:ok on every node',
    async () => {
      let reference: string | undefined;
      for (const p of ports) {
        const ok = await tryNode(p, async (r) => {
          const info = await r.cluster('INFO');
          if (infoField(info, 'cluster_state') !== 'ok' || infoField(info, 'cluster_slots_assigned') !== '16384') {
            last = `${p}: state=${infoField(info, 'cluster_state')} slots=${infoField(info, 'cluster_slots_assigned')} known=${infoField(info, 'cluster_known_nodes')}`;
            return false;
          }
          if (replicasSynced) {
            const view = parseNodes((await r.cluster('NODES')) as string);
            const masters = view.filter((n) => n.master && !n.failed && n.slots.length > 0).length;
            const replicas = view.filter((n) => !n.master && !n.failed).length;
            if (masters !== NODES / 2 || replicas !== NODES / 2) {
              last = `${p}: sees ${masters} masters and ${replicas} replicas`;
              return false;
            }
            const repl = await r.info('replication');
            if (infoField(repl, 'role') === 'slave' && infoField(repl, 'master_link_status') !== 'up') {
              last = `${p}: replica link ${infoField(repl, 'master_link_status')}`;
              return false;
            }
            // Clients learn replicas from CLUSTER SLOTS, which lists a replica once its replication offset is
            // known to be past 0 (a master killed then has a replica, known to every client, to take its slots).
            const slots = (await r.cluster('SLOTS')) as unknown[][];
            if (slots.some((range) => range.length < 4)) {
              last = `${p}: CLUSTER SLOTS lists no replica yet for some slots`;
              return false;
            }
          }
          return true;
        });
        if (!ok) return undefined;
        const ranges = await slotRanges(p);
        const signature = ranges ? JSON.stringify(ranges) : undefined;
        if (signature === undefined) return undefined;
        if (reference === undefined) reference = signature;
        else if (signature !== reference) {
          last = `${p}: disagrees on the slot map`;
          return undefined;
        }
      }
      return true;
    },
    { timeoutMs: timeoutMs, state: () => last },
  );
}
