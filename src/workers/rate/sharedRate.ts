// Where the learned rate of one limit scope lives: a hash in Redis that every worker process, on every machine,
// reads and writes (rateUpdate-1.lua: a write based on an older read is refused, so concurrent decisions never
// mix), next to the pacer's hash whose request log (pace-1.lua) says what the API admitted before any 429.
// `readRateState` is the read-only view for status, the progress line, metrics and reports.
import type { RedisClient } from '../../redis/connection.js';
import { DEFAULT_RATE_SCOPE, RATE, RedisKeys } from '../../redis/keys.js';
import { callScript } from '../../redis/scripts.js';
import { DEFAULT_DISCOVERY, type Phase, type RateState, type WindowSeconds } from './discovery.js';
import { estimateEdge, type EdgeBracket } from './windowEdge.js';

/** The rate hash outlives idle periods: a restarted worker (or the next night's run) starts from it. */
const RATE_TTL_MS = 30 * 24 * 3600_000;
/** The pacer's log only matters for the last minute and a half. */
export const PACE_TTL_MS = 10 * 60_000;

type Field = keyof typeof RATE;
const NUMBER_FIELDS = Object.keys(RATE).filter((f) => f !== 'phase' && f !== 'version' && f !== 'edges') as Exclude<Field, 'phase' | 'version' | 'edges'>[];

export function encodeRate(state: RateState): string[] {
  const out: string[] = [RATE.phase, state.phase, RATE.edges, state.edges];
  for (const f of NUMBER_FIELDS) out.push(RATE[f], String(state[f as keyof RateState]));
  return out;
}

/** The stored state, or undefined when there is none (or only an older version's fields: a clean start). */
export function decodeRate(hash: Record<string, string>): { state: RateState; version: string } | undefined {
  const version = hash[RATE.version];
  if (version === undefined) return undefined;
  const num = (f: Field): number => {
    const v = Number(hash[RATE[f]]);
    return Number.isFinite(v) ? v : 0;
  };
  const phase: Phase = hash[RATE.phase] === 'start' ? 'start' : 'hold';
  const window: WindowSeconds = num('window') === 60 ? 60 : 1;
  const state = Object.fromEntries(NUMBER_FIELDS.map((f) => [f, num(f)])) as unknown as RateState;
  const edges = hash[RATE.edges] ?? '';
  return { state: { ...state, phase, window, edges, rate: state.rate > 0 ? state.rate : DEFAULT_DISCOVERY.startRate }, version };
}

/** What the pacer's log says around a moment (pace-1.lua observe). */
export interface PaceCounts {
  /** Redis's clock, ms */
  now: number;
  sent1: number;
  sent60: number;
  admitted1: number | undefined;
  admitted60: number | undefined;
  /** the hold a refused request put on the schedule (ms; 0 when none) */
  heldMs: number;
  /** for a refused request in a one-second window: a window's start lies in this bracket (windowEdge.ts) */
  edgeBracket?: EdgeBracket | undefined;
}

/** A 429 to record in the pacer's log: when its request was sent, the wait it asked, and where to count from. */
export interface RefusedRequest {
  sentAt: number;
  holdMs: number;
  /** a wait of "within a second": hold this long for the second's first refusal, doubling with each more (0 = hold holdMs) */
  edgeMs?: number;
  /** when the window opens again, if known (windowEdge.ts nextWindowStart): the hold ends there instead */
  opensAt?: number;
  from1: number;
  from60: number;
}

/** Only a count: what was admitted since a moment, up to now (returned as admitted1). */
export interface CountSince {
  since: number;
}

/** One scope's shared state: read, write if unchanged, and the pacer's counts. */
export class SharedRate {
  readonly rateKey: string;
  readonly paceKey: string;

  constructor(
    private readonly redis: RedisClient,
    keys: RedisKeys,
    readonly scope: string = DEFAULT_RATE_SCOPE,
  ) {
    this.rateKey = keys.rateOf(scope);
    this.paceKey = keys.paceOf(scope);
  }

  async read(): Promise<{ state: RateState; version: string } | undefined> {
    return decodeRate(await this.redis.hgetall(this.rateKey));
  }

  /** Writes `state` if the hash is still at `version` ('' = none); false when someone wrote it meanwhile. */
  async write(state: RateState, version: string): Promise<boolean> {
    const written = await callScript<number>(this.redis, 'rateUpdate', [this.rateKey], [version, RATE_TTL_MS, ...encodeRate(state)]);
    return written > 0;
  }

  /**
   * Counts of the last second and minute; for a refused request, records it (and its hold) and counts what was
   * admitted before it; with `since`, counts what was admitted from then to now.
   */
  async counts(around?: RefusedRequest | CountSince): Promise<PaceCounts> {
    const refused = around && 'sentAt' in around ? around : undefined;
    const since = around && 'since' in around ? around.since : undefined;
    const r = await callScript<number[]>(
      this.redis,
      'pace',
      [this.paceKey],
      [
        'observe',
        refused ? Math.round(refused.sentAt) : since !== undefined ? 'now' : 0,
        refused ? 1 : 0,
        refused ? Math.round(refused.holdMs) : 0,
        refused ? Math.round(refused.from1) : since !== undefined ? Math.round(since) : 0,
        refused ? Math.round(refused.from60) : 0,
        PACE_TTL_MS,
        refused ? Math.round(refused.edgeMs ?? 0) : 0,
        refused ? Math.round(refused.opensAt ?? 0) : 0,
      ],
    );
    const known = (v: number | undefined): number | undefined => (v === undefined || v < 0 ? undefined : v);
    const from = known(r[6]);
    const to = known(r[7]);
    return {
      now: Number(r[0]),
      sent1: Number(r[1]),
      sent60: Number(r[2]),
      admitted1: known(r[3]),
      admitted60: known(r[4]),
      heldMs: Number(r[5] ?? 0),
      edgeBracket: from !== undefined && to !== undefined ? { from: Number(from), to: Number(to) } : undefined,
    };
  }
}

/** The learned rate as status, the progress line, metrics and reports show it. */
export interface RateView {
  scope: string;
  /** the learned limit (requests/s); workers send at the headroom share of it (capped by their --rate) */
  rate: number;
  /** a probe in progress: the higher rate being tried for a few seconds (requests/s) */
  probing?: number;
  /** discovering: still climbing from a safe start; holding: at the learned rate, probing now and then */
  phase: 'discovering' | 'holding';
  /** the limit's window as learned: per second, or a per-minute budget */
  window: 'second' | 'minute';
  /** the cap the last writer applied (its --rate, or the announced limit), requests/s */
  ceiling?: number;
  /** the per-minute limit the API announced (RevenueCat-Rate-Limit-Current-Limit) */
  announcedPerMinute?: number;
  /** when the rate was last learned from the API's answers (ISO); absent when only configured */
  learnedAt?: string;
  /** when the last 429 of the limit came (ISO) */
  lastRateLimitedAt?: string;
  /**
   * where fixed one-second windows open, as far as refusals told (windowEdge.ts): ms into each second of Redis's
   * clock, by send time, the uncertainty, and how many brackets agreed; absent until one was seen
   */
  windowEdge?: { atMs: number; widthMs: number; votes: number; of: number };
}

export function viewOf(scope: string, s: RateState): RateView {
  const iso = (ms: number): string | undefined => (ms > 0 ? new Date(ms).toISOString() : undefined);
  const learnedAt = iso(s.learnedAt);
  const last429 = iso(s.last429);
  const edge = estimateEdge(s.edges);
  return {
    scope,
    rate: s.probeFrom > 0 ? s.probeFrom : s.rate,
    ...(s.probeFrom > 0 ? { probing: s.rate } : {}),
    phase: s.phase === 'start' ? 'discovering' : 'holding',
    window: s.window === 60 ? 'minute' : 'second',
    ...(s.ceiling > 0 ? { ceiling: s.ceiling } : {}),
    ...(s.announced > 0 ? { announcedPerMinute: s.announced } : {}),
    ...(learnedAt ? { learnedAt } : {}),
    ...(last429 ? { lastRateLimitedAt: last429 } : {}),
    ...(edge ? { windowEdge: { atMs: edge.lo, widthMs: edge.width, votes: edge.votes, of: edge.of } } : {}),
  };
}

/** The rate for people (status, the progress line): "request rate 97.3/s (learned 2 min ago, cap 100/s)". */
export function describeRate(v: RateView, now = Date.now()): string {
  const perSecond = (x: number): string => `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}/s`;
  if (v.phase === 'discovering') return `request rate ${perSecond(v.rate)} (discovering the limit)`;
  const parts: string[] = [v.learnedAt ? `learned ${ago(now - Date.parse(v.learnedAt))} ago` : 'as configured'];
  if (v.window === 'minute') parts.push(`a budget of ${Math.round(v.rate * 60)}/min`);
  if (v.probing !== undefined) parts.push(`probing ${perSecond(v.probing)}`);
  if (v.ceiling !== undefined) parts.push(`cap ${perSecond(v.ceiling)}`);
  return `request rate ${perSecond(v.rate)} (${parts.join(', ')})`;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** The learned rate of a scope, or undefined when no worker has set one. Read-only. */
export async function readRateState(redis: RedisClient, keys: RedisKeys, scope: string = DEFAULT_RATE_SCOPE): Promise<RateView | undefined> {
  const stored = decodeRate(await redis.hgetall(keys.rateOf(scope)));
  return stored ? viewOf(scope, stored.state) : undefined;
}
