// Counters a test or a rehearsal report checks afterwards: "no overlapping requests for a user, no request
// with the import flags left on, no row POSTed more often than expected". Plain JSON, so GET
// /_sandbox/stats and sandbox.stats() return the same thing.
import type { AppStoreServerApiStats } from './appStoreServerApi.js';
import type { AppleReceiptStats } from './applePurchases.js';
import { Timeline, type TimelineEvent, type TimelineStats } from './timeline.js';
import type { V1Limits } from './rateSchedule.js';

export interface ReceiptPostStats {
  /** Distinct (app_user_id, fetch_token) pairs POSTed. */
  distinct: number;
  /** POSTs that carried both fields, whatever their outcome (faults and 429s included: the server saw them). */
  total: number;
  /** The most POSTs any one pair received. */
  maxPerReceipt: number;
  /** The most 2xx answers any one pair received (more than 1 means a row was imported again). */
  maxSuccessfulPerReceipt: number;
}

export interface SandboxStats {
  /** API requests (everything except /_sandbox/*), counted on arrival. */
  requests: number;
  /** Answers by HTTP status ("200", "429", ...). Resets and hangs have no status: see `faults`. */
  byStatus: Record<string, number>;
  /** Requests by route: "POST /v1/receipts", "GET /v1/subscribers/{app_user_id}", "unknown". */
  byPath: Record<string, number>;
  /** Answers by v1 error `code` ("7103", ...). */
  byCode: Record<string, number>;
  /** POST /v1/receipts that reached the token stage, by directive label ("none", "active", "flaky2", ...). */
  byDirective: Record<string, number>;
  /** Requests that found another request for the same app_user_id in flight (answered 429 / 7638). */
  overlaps: number;
  /** Highest number of concurrent POSTs seen for one app_user_id, the overlapping ones included. */
  maxInFlightPerUser: number;
  /** POSTs being processed right now (past validation). */
  inFlight: number;
  /** POST /v1/receipts with a JSON object body whose create_events or should_update_last_seen_fields was not exactly false. */
  flagsNotFalse: number;
  receiptPosts: ReceiptPostStats;
  faults: { '5xx': number; reset: number; hang: number };
  /** 429s from the rate limit (not the 7638 per-user ones). */
  rateLimited: number;
  /** 2xx answers to POST /v1/receipts. */
  successfulReceipts: number;
  /** Subscribers held (aliases counted once). */
  subscribers: number;
  /** The v2 reads (GET /v2/projects/…), also counted in requests, byStatus and byPath. */
  v2: V2Stats;
  /** Requests by the key they presented, named by keyLabel() (`appl_san…3f9a`); `unknown` for keys not configured. */
  byKey: Record<string, KeyStats>;
  /** v1 traffic second by second (admitted, 429s, overlaps, the limits in force). */
  timeline: TimelineStats;
  /** App Store purchases moved from one App User ID to another (the list: GET /_sandbox/transfers). */
  transfers: number;
  /** App Store fetch tokens read (receipts, signed transactions) or not. */
  appleReceipts: AppleReceiptStats;
  /** The App Store Server API stand-in (its requests are not in `requests` above). */
  appStoreServerApi: AppStoreServerApiStats;
}

/** The App Store parts of the stats, kept by their own recorders (applePurchases.ts, appStoreServerApi.ts). */
export type AppleStatsPart = Pick<SandboxStats, 'transfers' | 'appleReceipts' | 'appStoreServerApi'>;

export interface KeyStats {
  /** The X-Platform values the key is for: `['*']` for a catch-all key, `[]` for an unknown one. */
  platforms: string[];
  /** Requests presenting the key (v1 and v2). */
  requests: number;
  /** 2xx answers. */
  accepted: number;
  /** 401 / 403 answers (unknown, revoked, another platform's key; v2 with a public key). */
  unauthorized: number;
  /** 429s from a rate limit (v1 7429, v2 rate_limit_error); same-user overlaps are not counted here. */
  rateLimited: number;
}

export interface V2Stats {
  /** v2 requests, counted on arrival. */
  requests: number;
  /** 429 rate_limit_error answers, both v2 domains. */
  rateLimited: number;
  /** v2 error answers by `type` ("resource_missing", "authorization_error", ...). */
  byType: Record<string, number>;
}

export interface ReceiptPostCount {
  app_user_id: string;
  fetch_token: string;
  posts: number;
  successes: number;
}

function bump(record: Record<string, number>, key: string | number): void {
  const k = String(key);
  record[k] = (record[k] ?? 0) + 1;
}

const pairKey = (appUserId: string, fetchToken: string): string => `${appUserId}\u0000${fetchToken}`;

export class StatsRecorder {
  private requests = 0;
  private byStatus: Record<string, number> = {};
  private byPath: Record<string, number> = {};
  private byCode: Record<string, number> = {};
  private byDirective: Record<string, number> = {};
  private overlaps = 0;
  private maxInFlightPerUser = 0;
  private flagsNotFalse = 0;
  private faults = { '5xx': 0, reset: 0, hang: 0 };
  private rateLimited = 0;
  private successfulReceipts = 0;
  private pairs = new Map<string, { posts: number; successes: number }>();
  private postsTotal = 0;
  private maxPerReceipt = 0;
  private maxSuccessfulPerReceipt = 0;
  private v2: V2Stats = { requests: 0, rateLimited: 0, byType: {} };
  private byKey: Record<string, KeyStats> = {};
  private readonly timeline = new Timeline();

  /** A request presented a key (label from keyLabel()). */
  keyRequest(label: string, platforms: string[]): void {
    const entry = (this.byKey[label] ??= { platforms, requests: 0, accepted: 0, unauthorized: 0, rateLimited: 0 });
    entry.platforms = platforms;
    entry.requests++;
  }

  /** The answer to a request that presented a key. */
  keyAnswer(label: string, status: number, rateLimited: boolean): void {
    const entry = this.byKey[label];
    if (!entry) return;
    if (status >= 200 && status < 300) entry.accepted++;
    else if (status === 401 || status === 403) entry.unauthorized++;
    else if (rateLimited) entry.rateLimited++;
  }

  /** One v1 event in the per-second timeline, with the limits in force. */
  tick(event: TimelineEvent, limits: V1Limits): void {
    this.timeline.note(event, limits);
  }

  request(path: string): void {
    this.requests++;
    bump(this.byPath, path);
  }

  v2Request(path: string): void {
    this.request(path);
    this.v2.requests++;
  }

  v2Error(type: string): void {
    bump(this.v2.byType, type);
    if (type === 'rate_limit_error') this.v2.rateLimited++;
  }

  response(status: number, code: number | undefined): void {
    bump(this.byStatus, status);
    if (code !== undefined) bump(this.byCode, code);
  }

  directive(label: string): void {
    bump(this.byDirective, label);
  }

  flagNotFalse(): void {
    this.flagsNotFalse++;
  }

  overlap(): void {
    this.overlaps++;
  }

  userConcurrency(concurrent: number): void {
    if (concurrent > this.maxInFlightPerUser) this.maxInFlightPerUser = concurrent;
  }

  fault(kind: '5xx' | 'reset' | 'hang'): void {
    this.faults[kind]++;
  }

  rateLimit(): void {
    this.rateLimited++;
  }

  receiptPost(appUserId: string, fetchToken: string): void {
    const entry = this.pair(appUserId, fetchToken);
    entry.posts++;
    this.postsTotal++;
    if (entry.posts > this.maxPerReceipt) this.maxPerReceipt = entry.posts;
  }

  receiptSuccess(appUserId: string, fetchToken: string): void {
    this.successfulReceipts++;
    const entry = this.pair(appUserId, fetchToken);
    entry.successes++;
    if (entry.successes > this.maxSuccessfulPerReceipt) this.maxSuccessfulPerReceipt = entry.successes;
  }

  receiptPostCount(appUserId: string, fetchToken: string): { posts: number; successes: number } {
    const entry = this.pairs.get(pairKey(appUserId, fetchToken));
    return { posts: entry?.posts ?? 0, successes: entry?.successes ?? 0 };
  }

  receiptPostCounts(): ReceiptPostCount[] {
    return [...this.pairs].map(([key, v]) => {
      const cut = key.indexOf('\u0000');
      return { app_user_id: key.slice(0, cut), fetch_token: key.slice(cut + 1), posts: v.posts, successes: v.successes };
    });
  }

  snapshot(live: { inFlight: number; subscribers: number; apple: AppleStatsPart }): SandboxStats {
    return {
      requests: this.requests,
      byStatus: { ...this.byStatus },
      byPath: { ...this.byPath },
      byCode: { ...this.byCode },
      byDirective: { ...this.byDirective },
      overlaps: this.overlaps,
      maxInFlightPerUser: this.maxInFlightPerUser,
      inFlight: live.inFlight,
      flagsNotFalse: this.flagsNotFalse,
      receiptPosts: {
        distinct: this.pairs.size,
        total: this.postsTotal,
        maxPerReceipt: this.maxPerReceipt,
        maxSuccessfulPerReceipt: this.maxSuccessfulPerReceipt,
      },
      faults: { ...this.faults },
      rateLimited: this.rateLimited,
      successfulReceipts: this.successfulReceipts,
      subscribers: live.subscribers,
      v2: { requests: this.v2.requests, rateLimited: this.v2.rateLimited, byType: { ...this.v2.byType } },
      byKey: Object.fromEntries(Object.entries(this.byKey).map(([label, entry]) => [label, { ...entry, platforms: [...entry.platforms] }])),
      timeline: this.timeline.snapshot(),
      ...live.apple,
    };
  }

  reset(): void {
    this.requests = 0;
    this.byStatus = {};
    this.byPath = {};
    this.byCode = {};
    this.byDirective = {};
    this.overlaps = 0;
    this.maxInFlightPerUser = 0;
    this.flagsNotFalse = 0;
    this.faults = { '5xx': 0, reset: 0, hang: 0 };
    this.rateLimited = 0;
    this.successfulReceipts = 0;
    this.pairs = new Map();
    this.postsTotal = 0;
    this.maxPerReceipt = 0;
    this.maxSuccessfulPerReceipt = 0;
    this.v2 = { requests: 0, rateLimited: 0, byType: {} };
    this.byKey = {};
    this.timeline.reset();
  }

  private pair(appUserId: string, fetchToken: string): { posts: number; successes: number } {
    const key = pairKey(appUserId, fetchToken);
    let entry = this.pairs.get(key);
    if (!entry) {
      entry = { posts: 0, successes: 0 };
      this.pairs.set(key, entry);
    }
    return entry;
  }
}
