// Google Play tokens near the cut-off. The Play Developer API stops answering for a purchase token about 60 days
// after the subscription expired (410 purchaseTokenNoLongerValid), so RevenueCat can no longer import it. When the
// export says when each token expired or expires (an `expires_at` / `expiry_time_ms` column, or any column given with
// --map column=expires_at), the ingester:
// - sends the Google rows whose cut-off comes soonest first, through BullMQ job priorities (rowPriority);
// - flags the rows already past the cut-off (`past_cutoff` on the job data), which are still sent: "about 60 days" is
//   not a contract (some pages still say 90), and the store's answer is the only proof.
// The expiry is read, never sent: it is not a POST /v1/receipts field.
//
// Values (decided here, documented in docs/input.md):
// - ISO 8601: a date (`2025-03-01`, midnight UTC) or a date and time (`2025-03-01T12:30:00Z`, `…+02:00`, a space
//   instead of the T, fractions of a second); a time without an offset is UTC (exports are written by servers).
// - Epoch: a whole number; 12 digits or more is milliseconds, fewer is seconds (100,000,000,000 ms is March 1973
//   and 100,000,000,000 s the year 5138, so no real expiry is ambiguous).
// - Empty: no expiry known; the row keeps its place in file order.
// - Anything else rejects the row (its reason names the column and the accepted forms), as a malformed
//   expected_expires_at does: a column that does not say what it seems to is better fixed than guessed.
// - Only Google rows (platform android) use it; other stores' rows ignore the column.
//
// Priorities (BullMQ: 1 is the highest, PRIORITY_LIMIT = 2^21 - 1 = 2,097,151 the lowest, checked when a job is
// added; 0 means none, and a job without priority is taken before every prioritized one):
// - A Google row with a known expiry still inside its window gets 1 + the hours from 2020-01-01 to its cut-off
//   (expiry + 60 days): an absolute scale, so rows of different chunks, ingests and runs sharing the queue all
//   compare correctly, and rows of the same hour keep file order (BullMQ orders equal priorities FIFO).
// - An App Store row whose receipt or signed transaction holds an active subscription (appstore/activeExpiry.ts:
//   the soonest expiry among them, read at ingest, no column needed) gets the place a Google row of the same
//   expiry gets (expiryPriority), so the rows of both stores interleave by expiry and the subscriptions that renew
//   or lapse soonest reach RevenueCat first. A Google token expired less than 60 days ago still races its cut-off
//   and goes before every active App Store subscription; an App Store receipt has no cut-off, so an expired one is
//   not hurried.
// - Every other row of such a run (no expiry, not Google, already past the cut-off, an App Store token unread or
//   with nothing active) gets the lowest priority, 2,097,151, so it keeps file order behind the rows racing their
//   expiry. It cannot stay at priority 0: those jobs would be taken first.
// - A run that never sees an expiry column nor an active App Store subscription (the ingest's survey reads every
//   App Store row before the first is queued) gives no priority at all (today's order, and no sorted-set entry per
//   waiting job: a prioritized job costs a ZADD, O(log n) in the waiting jobs, instead of an LPUSH).
// The reordering works among the rows waiting in the queue at the same time: up to the ingest's high-water mark.
import { PRIORITY_LIMIT } from 'bullmq';
import type { Platform } from '../revenuecat/fields.js';
import type { ColumnPlan } from './columns.js';

/** Days after expiry after which Google Play no longer validates a purchase token (approximate). */
export const GOOGLE_CUTOFF_DAYS = 60;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
export const GOOGLE_CUTOFF_MS = GOOGLE_CUTOFF_DAYS * DAY_MS;

/** BullMQ's lowest priority (the largest number it accepts). */
export const LOWEST_PRIORITY: number = PRIORITY_LIMIT;
/** The origin of the priority scale: cut-offs before it are long past. */
const PRIORITY_EPOCH_MS = Date.UTC(2020, 0, 1);
/** 12 digits or more: epoch milliseconds. */
const EPOCH_MS_FROM = 100_000_000_000;

/** What the ingester puts on a Google row whose export gave the token's expiry. */
export interface TokenExpiry {
  /** when the token expired or expires (epoch ms) */
  expires_at_ms: number;
  /** expired more than GOOGLE_CUTOFF_DAYS before the row was read: the store will most likely answer 410 */
  past_cutoff: boolean;
}

export type ExpiryResult = { ok: true; expiry?: TokenExpiry } | { ok: false; reason: string };

/** The row's token expiry, when the file has an expiry column and the row is a Google row with a value in it. */
export function readTokenExpiry(values: Record<string, string>, plan: ColumnPlan, platform: Platform, now: number): ExpiryResult {
  const column = plan.expiry;
  if (column === undefined || platform !== 'android') return { ok: true };
  const text = (values[column] ?? '').trim();
  if (text === '') return { ok: true };
  const at = parseExpiry(text);
  if (at === undefined) {
    const where = column === 'expires_at' ? '' : ` (column "${column}")`;
    return {
      ok: false,
      reason: `expires_at "${clip(text)}"${where} is not a time: give ISO 8601 (2025-03-01 or 2025-03-01T12:00:00Z), epoch milliseconds or epoch seconds, or leave it empty`,
    };
  }
  return { ok: true, expiry: { expires_at_ms: at, past_cutoff: now - at > GOOGLE_CUTOFF_MS } };
}

/** Epoch milliseconds of an expiry cell (ISO 8601, epoch ms or epoch s), or undefined when it is none of those. */
export function parseExpiry(text: string): number | undefined {
  const value = text.trim();
  if (/^\d{1,16}$/.test(value)) {
    const n = Number(value);
    const ms = n >= EPOCH_MS_FROM ? n : n * 1000;
    return Number.isNaN(new Date(ms).getTime()) ? undefined : ms;
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i.exec(value);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((p) => Number(p ?? 0)) as [number, number, number, number, number, number];
  if (year < 1000 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const ms = Math.floor(Number(`0.${m[7] ?? '0'}`) * 1000);
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  if (new Date(utc).getUTCDate() !== day) return undefined; // 2025-02-30
  return utc - offsetMs(m[8]);
}

/**
 * The BullMQ priority of a row of a run that orders by expiry (see the notes at the top): the place of a Google
 * row still inside its window, else the lowest priority.
 */
export function rowPriority(expiry: TokenExpiry | undefined): number {
  if (expiry === undefined || expiry.past_cutoff) return LOWEST_PRIORITY;
  return expiryPriority(expiry.expires_at_ms);
}

/**
 * The place on the priority scale of a row whose subscription expires (or expired) at `expiresAtMs`: 1 + the hours
 * from 2020 to expiry + 60 days, a Google token's cut-off. One scale for both stores: an App Store row with an
 * active subscription (appstore/activeExpiry.ts) is placed by its expiry exactly as a Google row is.
 */
export function expiryPriority(expiresAtMs: number): number {
  const hours = Math.floor((expiresAtMs + GOOGLE_CUTOFF_MS - PRIORITY_EPOCH_MS) / HOUR_MS);
  return Math.min(Math.max(1 + hours, 1), LOWEST_PRIORITY - 1);
}

function offsetMs(zone: string | undefined): number {
  if (zone === undefined || zone.toUpperCase() === 'Z') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0)) * 60_000;
}

function clip(text: string): string {
  return text.length <= 40 ? text : `${text.slice(0, 37)}…`;
}
