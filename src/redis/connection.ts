// One place that opens Redis connections, so every part of the tool gets the options BullMQ needs and a
// connection error that says what to do instead of a stack trace. Where Redis is comes from the configuration:
// one node (REDIS_URL), or a Redis Cluster found from seed nodes (REDIS_CLUSTER_NODES), which switches every
// connection of the tool (BullMQ's included, which duplicate the one they are given) to an ioredis Cluster.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ConfigError } from '../config.js';
import { endsWithin } from '../deadline.js';

/** A connection to one Redis node or to a Redis Cluster. Type new code against this, never `Redis` alone. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: the two configuration keys that say it (a Config satisfies this). */
export interface RedisTarget {
  /** redis:// or rediss:// URL of a single node; with a cluster, only its user, password and TLS are used. */
  redisUrl: string;
  /** Seed nodes of a Redis Cluster, comma-separated (see parseClusterNodes); absent = single node. */
  redisClusterNodes?: string | undefined;
}

/** The seed nodes of a cluster and how to authenticate to every node of it. */
export interface ClusterSpec {
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  tls: boolean;
}

/** Whether a connection (or BullMQ connection option) is a Redis Cluster connection. */
export function isCluster(redis: unknown): redis is Cluster {
  return typeof redis === 'object' && redis !== null && (redis as Partial<Cluster>).isCluster === true;
}

/** Options BullMQ requires on connections used by Workers (blocking commands must never give up). */
export function redisOptions(extra: RedisOptions = {}): RedisOptions {
  return { maxRetriesPerRequest: null, enableReadyCheck: true, ...extra };
}

/** How long a long-lived connection waits between reconnect attempts (after an outage, a failover). */
const reconnectDelay = (times: number): number => Math.min(times * 200, 2000);

/**
 * Options of a long-lived Cluster connection. A failover (a master dies, its replica takes over after
 * cluster-node-timeout, 15 s by default) must look like a pause to the tool, not an error: commands to the dead
 * master are retried every 500 ms while the slot map is refreshed, and up to 64 times (~32 s) before one fails.
 */
export function clusterOptions(spec: ClusterSpec, extra: RedisOptions = {}): ClusterOptions {
  const node: RedisOptions = redisOptions({
    ...(spec.username !== undefined ? { username: spec.username } : {}),
    ...(spec.password !== undefined ? { password: spec.password } : {}),
    ...(spec.tls ? { tls: {} } : {}),
    ...extra,
  });
  return {
    redisOptions: node,
    enableReadyCheck: true,
    clusterRetryStrategy: reconnectDelay,
    retryDelayOnFailover: 500,
    retryDelayOnClusterDown: 500,
    retryDelayOnTryAgain: 200,
    maxRedirections: 64,
    // Refreshing the slot map on a busy machine can take longer than ioredis's 1 s default.
    slotsRefreshTimeout: 3000,
    // Re-read the slot map every 5 s (ioredis otherwise only does on a redirection or a broken connection): it
    // shows a failover even when no command of ours was refused meanwhile.
    slotsRefreshInterval: 5000,
    // With TLS, connect to the names the nodes were given by, so the certificate is checked against them
    // (managed clusters such as ElastiCache put the name, not the address, in their certificates).
    ...(spec.tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
  };
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/@[\]]+)):(\d{1,5})$/;

function parsePort(text: string, entry: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`REDIS_CLUSTER_NODES: "${redactEntry(entry)}" has no valid port (1-65535)`);
  return port;
}

function redactEntry(entry: string): string {
  return /^rediss?:\/\//i.test(entry) ? redactUrl(entry) : entry;
}

/**
 * Parses REDIS_CLUSTER_NODES: seed nodes separated by commas, each `host:port` (`[::1]:7000` for IPv6) or a URL
 * `redis://[user:password@]host:port` / `rediss://…`. One cluster has one set of users for all its nodes (and
 * ioredis connects to the nodes it discovers with the same options), so:
 * - user and password come from the entries that give them (they must agree), else from REDIS_URL;
 * - TLS is on when the entries are `rediss://` URLs (they must agree), or, for plain `host:port` entries,
 *   when REDIS_URL is `rediss://`.
 * REDIS_URL's host, port and database are not used with a cluster (a cluster has only database 0).
 */
export function parseClusterNodes(spec: string, redisUrl?: string): ClusterSpec {
  const entries = spec
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) throw new ConfigError('REDIS_CLUSTER_NODES is empty: list the seed nodes as host:port,host:port,…');
  const nodes: ClusterSpec['nodes'] = [];
  const users = new Set<string>();
  const passwords = new Set<string>();
  const schemes = new Set<string>();
  for (const entry of entries) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) {
      let url: URL;
      try {
        url = new URL(entry);
      } catch {
        throw new ConfigError(`REDIS_CLUSTER_NODES: "${redactEntry(entry)}" is not a valid URL`);
      }
      if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
        throw new ConfigError(`REDIS_CLUSTER_NODES: "${redactEntry(entry)}" must be host:port or a redis:// / rediss:// URL`);
      if (url.pathname !== '' && url.pathname !== '/' && url.pathname !== '/0')
        throw new ConfigError(`REDIS_CLUSTER_NODES: "${redactEntry(entry)}" names a database; a Redis Cluster has only database 0`);
      schemes.add(url.protocol);
      if (url.username !== '') users.add(decodeURIComponent(url.username));
      if (url.password !== '') passwords.add(decodeURIComponent(url.password));
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      if (host === '') throw new ConfigError(`REDIS_CLUSTER_NODES: "${redactEntry(entry)}" has no host`);
      nodes.push({ host, port: url.port === '' ? 6379 : parsePort(url.port, entry) });
    } else {
      const m = HOST_PORT.exec(entry);
      if (!m) throw new ConfigError(`REDIS_CLUSTER_NODES: "${entry}" is not host:port (e.g. 10.0.0.5:6379)`);
      nodes.push({ host: (m[1] ?? m[2]) as string, port: parsePort(m[3] as string, entry) });
    }
  }
  if (schemes.size > 1) throw new ConfigError('REDIS_CLUSTER_NODES mixes redis:// and rediss:// nodes: a cluster is reached with TLS on every node or on none');
  if (users.size > 1 || passwords.size > 1) throw new ConfigError('REDIS_CLUSTER_NODES gives different users or passwords for different nodes: give them once (or in REDIS_URL)');

  const result: ClusterSpec = { nodes, tls: schemes.has('rediss:') };
  let fallback: URL | undefined;
  try {
    fallback = redisUrl === undefined ? undefined : new URL(redisUrl);
  } catch {
    fallback = undefined;
  }
  const user = [...users][0] ?? (fallback && fallback.username !== '' ? decodeURIComponent(fallback.username) : undefined);
  const password = [...passwords][0] ?? (fallback && fallback.password !== '' ? decodeURIComponent(fallback.password) : undefined);
  if (user !== undefined) result.username = user;
  if (password !== undefined) result.password = password;
  if (schemes.size === 0 && fallback?.protocol === 'rediss:') result.tls = true;
  return result;
}

function clusterSpecOf(target: RedisTarget): ClusterSpec | undefined {
  const nodes = target.redisClusterNodes?.trim();
  return nodes ? parseClusterNodes(nodes, target.redisUrl) : undefined;
}

/** Where a target points, for messages: the URL without its password, or the cluster's seed nodes. */
export function describeTarget(target: string | RedisTarget): string {
  if (typeof target === 'string') return redactUrl(target);
  const spec = clusterSpecOf(target);
  if (!spec) return redactUrl(target.redisUrl);
  return `the Redis Cluster at ${spec.nodes.map((n) => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(', ')}${spec.tls ? ' (TLS)' : ''}`;
}

/**
 * A connection that connects in the background and reconnects on its own. A URL always means one node;
 * a target (a Config) means a cluster when it names cluster nodes.
 */
export function openRedis(url: string, extra?: RedisOptions): Redis;
export function openRedis(target: RedisTarget, extra?: RedisOptions): RedisClient;
export function openRedis(target: string | RedisTarget, extra: RedisOptions = {}): RedisClient {
  if (typeof target === 'string') return new Redis(target, redisOptions(extra));
  const spec = clusterSpecOf(target);
  if (spec) return new Cluster(spec.nodes, clusterOptions(spec, extra));
  return new Redis(target.redisUrl, redisOptions(extra));
}

/**
 * Another connection to the Redis of `redis`, with its options (a lazy one connects at its first command, and
 * reconnects as the first does). Its connection errors are left to the commands they fail, as the first's are.
 */
export function anotherConnection(redis: RedisClient): RedisClient {
  // the same call on both, narrowed apart: TypeScript cannot call the union of the two duplicate() signatures
  const copy: RedisClient = isCluster(redis) ? redis.duplicate() : redis.duplicate();
  copy.on('error', () => undefined);
  return copy;
}

/**
 * Connects and pings once, failing fast with a message that names where it tried (never a password). A URL
 * always means one node; a target (a Config) means a cluster when it names cluster nodes.
 */
export function connectRedis(url: string, timeoutMs?: number): Promise<Redis>;
export function connectRedis(target: RedisTarget, timeoutMs?: number): Promise<RedisClient>;
export async function connectRedis(target: string | RedisTarget, timeoutMs = 3000): Promise<RedisClient> {
  const spec = typeof target === 'string' ? undefined : clusterSpecOf(target);
  if (spec) return connectCluster(spec, describeTarget(target), timeoutMs);
  const url = typeof target === 'string' ? target : target.redisUrl;
  const redis = new Redis(url, redisOptions({ lazyConnect: true, connectTimeout: timeoutMs, retryStrategy: () => null }));
  redis.on('error', () => {
    /* surfaced by connect() below */
  });
  let clusterInfo: string;
  try {
    await redis.connect();
    await redis.ping();
    clusterInfo = await redis.info('cluster').catch(() => '');
  } catch (err) {
    redis.disconnect();
    throw new ConfigError(`cannot reach Redis at ${redactUrl(url)} (${(err as Error).message}): start one (redis-server, or docker compose up -d redis) or set REDIS_URL`);
  }
  // A cluster node answers PING like any Redis, then MOVED on most keys: say so now rather than mid-run.
  if (/^cluster_enabled:1/m.test(clusterInfo)) {
    redis.disconnect();
    throw new ConfigError(
      `Redis at ${redactUrl(url)} is a Redis Cluster node: set REDIS_CLUSTER_NODES=host:port,host:port,… to the cluster's nodes (user, password and TLS are taken from REDIS_URL)`,
    );
  }
  // From here on, reconnect like a long-lived connection should.
  redis.options.retryStrategy = reconnectDelay;
  return redis;
}

async function connectCluster(spec: ClusterSpec, where: string, timeoutMs: number): Promise<Cluster> {
  const cluster = new Cluster(spec.nodes, {
    ...clusterOptions(spec, { connectTimeout: timeoutMs }),
    lazyConnect: true,
    clusterRetryStrategy: () => null,
  });
  // ioredis's own connect error ("None of startup nodes is available") hides the cause: keep the nodes' errors.
  let cause = '';
  const remember = (err: Error): void => {
    const inner = (err as Error & { lastNodeError?: Error }).lastNodeError;
    cause = inner ? inner.message : err.message;
  };
  cluster.on('error', remember);
  cluster.on('node error', remember);
  try {
    if (
      !(await endsWithin(
        cluster.connect().then(() => cluster.ping()),
        timeoutMs * 2,
      ))
    )
      throw new Error(`no answer within ${timeoutMs * 2} ms`);
  } catch (err) {
    cluster.disconnect();
    const message = (err as Error).message;
    const reason = cause && cause !== message ? `${message}: ${cause}` : message;
    const hint = /cluster support disabled/i.test(reason)
      ? 'these nodes are not a Redis Cluster: unset REDIS_CLUSTER_NODES and set REDIS_URL'
      : 'check REDIS_CLUSTER_NODES (seed nodes host:port,…) and that the cluster says cluster_state:ok';
    throw new ConfigError(`cannot reach ${where} (${reason}): ${hint}`);
  }
  cluster.removeListener('error', remember);
  cluster.removeListener('node error', remember);
  cluster.on('error', () => {
    /* reconnects on its own; BullMQ and the commands report what fails */
  });
  // From here on, reconnect like a long-lived connection should; duplicates (BullMQ's blocking connections)
  // copy these options.
  cluster.options.clusterRetryStrategy = reconnectDelay;
  return cluster;
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
