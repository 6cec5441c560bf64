// Redis at maxmemory. With `maxmemory-policy noeviction` (the only safe policy for the ledger) a full Redis
// refuses every command that could grow memory with "OOM command not allowed when used memory > 'maxmemory'",
// while reads and deletions still work. Nothing is wrong with the rows then: the writes only have to wait until
// someone frees memory or raises maxmemory. This module recognises that answer and waits it out.
//
// Retrying a refused write is safe for every write of this tool: a Lua script (ours and BullMQ's) is refused
// at its first write command, before it changed anything, and once it has written Redis lets it finish; a MULTI
// with a refused command is discarded whole (EXECABORT); BullMQ's addBulk is a pipeline of one script per job,
// so each job either got in or did not, and re-adding a job id that exists is a no-op.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { redisErrorSays } from './errorText.js';

/** All this module asks of a connection (a plain client, a Cluster, or BullMQ's client of a queue). */
export interface InfoReader {
  info(section: string): Promise<string>;
}

/** The start of Redis's answer to a write refused at maxmemory (also inside a script error's message). */
const OOM_ANSWER = 'OOM command not allowed';

/** True when `err` is Redis refusing a write at maxmemory, directly, from a script, or inside an aborted MULTI. */
export function isOutOfMemory(err: unknown): boolean {
  return redisErrorSays(err, OOM_ANSWER);
}

export interface MemoryUse {
  usedBytes: number;
  /** 0 when Redis has no maxmemory */
  maxBytes: number;
}

/** Redis's own figures (INFO memory, which a full Redis still answers); undefined when they cannot be read. */
export async function memoryUse(redis: InfoReader): Promise<MemoryUse | undefined> {
  try {
    const info = await redis.info('memory');
    const used = /^used_memory:(\d+)/m.exec(info);
    const max = /^maxmemory:(\d+)/m.exec(info);
    if (!used || !max) return undefined;
    return { usedBytes: Number(used[1]), maxBytes: Number(max[1]) };
  } catch {
    return undefined;
  }
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export interface MemoryPressureOptions {
  logger: Logger;
  /** who waits, as the messages name it: "ingest", "workers" */
  role: string;
  /** what the operator can do, as the warning says it */
  advice: string;
  /** where INFO memory is read for the warning's figures (lazily: a BullMQ queue gives its client as a promise) */
  redis?: () => InfoReader | Promise<InfoReader>;
  /** first wait after a refusal; doubles up to maxDelayMs (defaults 100 ms, 2 s) */
  minDelayMs?: number;
  maxDelayMs?: number;
  /**
   * A new episode this soon after the last warning is logged at debug, so that a Redis hovering at its limit
   * (refusing one write, accepting the next) does not warn once per row; and an episode with no refusal for
   * this long is over even if no write of ours succeeded since (default 30 s).
   */
  quietMs?: number;
  now?: () => number;
}

/**
 * One process's view of "Redis is full": every write that may meet it goes through `retry`, which waits with
 * backoff until Redis accepts it again. The first refusal of an episode logs one warning that names the cause
 * and the remedy; the first write accepted after it logs that the work resumed. Nothing is logged per row.
 */
export class MemoryPressure {
  private inEpisode = false;
  private episodeWarned = false;
  private episodeStartedAt = 0;
  private lastRefusalAt = 0;
  private lastWarningAt: number | undefined;
  private warningCount = 0;
  private readonly now: () => number;

  constructor(private readonly opts: MemoryPressureOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** True while writes are being refused (since the last refusal, no refused write of ours went through). */
  get full(): boolean {
    return this.inEpisode;
  }

  /** How many warnings were logged (one per episode, fewer when episodes follow each other closely). */
  get warnings(): number {
    return this.warningCount;
  }

  /**
   * Runs `op` until Redis accepts it: a refusal at maxmemory waits (100 ms, doubling up to 2 s, with jitter) and
   * tries again; any other error is thrown as it is. `op` must be safe to repeat after a refusal (see the top of
   * this file). With a signal, an abort during a wait throws the refusal, naming it. `onRefused` runs after each
   * refusal, before the wait (its errors are ignored): what must not lapse meanwhile is kept alive there.
   */
  async retry<T>(op: () => Promise<T>, opts: { signal?: AbortSignal; onRefused?: () => Promise<unknown> } = {}): Promise<T> {
    let delay = this.opts.minDelayMs ?? 100;
    const maxDelay = this.opts.maxDelayMs ?? 2000;
    let wasRefused = false;
    for (;;) {
      try {
        const value = await op();
        // Only a write that was refused and is now accepted shows that Redis has room again: some writes
        // (deletions, pipelines that report errors per command) go through a full Redis or never throw.
        if (wasRefused) this.accepted();
        return value;
      } catch (err) {
        if (!isOutOfMemory(err)) throw err;
        wasRefused = true;
        this.refused();
        if (opts.signal?.aborted) throw stoppedWhileFull(this.opts.role);
        await opts.onRefused?.().catch(() => undefined);
        await sleep(delay * (0.75 + Math.random() * 0.5), undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => undefined);
        if (opts.signal?.aborted) throw stoppedWhileFull(this.opts.role);
        delay = Math.min(maxDelay, delay * 2);
      }
    }
  }

  /**
   * For refusals met by code that retries on its own (BullMQ's worker loop reports them as 'error' events):
   * true when `err` is one, which then counts towards the episode instead of being logged by the caller.
   */
  noteError(err: unknown): boolean {
    if (!isOutOfMemory(err)) return false;
    this.refused();
    return true;
  }

  private refused(): void {
    const now = this.now();
    const quiet = this.opts.quietMs ?? 30_000;
    // An episode nobody ended (only BullMQ met the refusals, and none of our writes succeeded since) is over
    // once Redis has been quiet for a while: a refusal after that is news again.
    if (this.inEpisode && now - this.lastRefusalAt > quiet) this.inEpisode = false;
    this.lastRefusalAt = now;
    if (this.inEpisode) return;
    this.inEpisode = true;
    this.episodeStartedAt = now;
    this.episodeWarned = this.lastWarningAt === undefined || now - this.lastWarningAt >= quiet;
    if (this.episodeWarned) {
      this.lastWarningAt = now;
      this.warningCount++;
      void this.warn();
    } else {
      this.opts.logger.debug({ role: this.opts.role }, 'Redis is at maxmemory again: waiting');
    }
  }

  private accepted(): void {
    if (!this.inEpisode) return;
    this.inEpisode = false;
    const pausedMs = this.now() - this.episodeStartedAt;
    if (this.episodeWarned) this.opts.logger.info({ role: this.opts.role, pausedMs }, `Redis accepts writes again: ${this.opts.role} resumed`);
  }

  private async warn(): Promise<void> {
    // The figures are read after the decision to warn, so that concurrent refusals still log only once.
    const redis = this.opts.redis ? await Promise.resolve(this.opts.redis()).catch(() => undefined) : undefined;
    const use = redis ? await memoryUse(redis) : undefined;
    const figures = use ? ` (used ${megabytes(use.usedBytes)} of ${megabytes(use.maxBytes)})` : '';
    this.opts.logger.warn(
      { role: this.opts.role, ...(use ? { usedBytes: use.usedBytes, maxBytes: use.maxBytes } : {}) },
      `Redis is at maxmemory${figures}: ${this.opts.role} paused; ${this.opts.advice}`,
    );
  }
}

function stoppedWhileFull(role: string): Error {
  return new Error(`${role} stopped while Redis was at maxmemory (${OOM_ANSWER}): the rows not written are taken up again when the run is resumed`);
}
