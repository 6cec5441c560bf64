// An outcome as JSON: a positional array instead of an object, with the source as an index, times as epoch
// milliseconds, and values that repeat the row left out. The ledger keeps a failed row's outcome in this form
// (deflated: ledger/rowRecord.ts packFailure); a succeeded row has a much smaller binary record of its own
// (rowRecord.ts encodeSuccess). The Outcome type is what everything else sees.
import type { Platform, ReceiptBody } from '../revenuecat/fields.js';
import type { Expectations } from '../state/expectations.js';
import type { MismatchDetail } from '../state/mismatch.js';
import type { SubscriberSummary } from '../state/subscriberSummary.js';
import type { Outcome } from '../types.js';

export const STATUS_CODES = { succeeded: 's', failed: 'f' } as const;

const FOUND = { subscription: 's', non_subscription: 'n', absent: 'a', not_checked: 'x' } as const;
const FOUND_BACK = { s: 'subscription', n: 'non_subscription', a: 'absent', x: 'not_checked' } as const;

type Stored = (string | number | null | StoredSub | Record<string, string> | ReceiptBody | Expectations | MismatchDetail[])[];
type StoredSub = [string | 0, keyof typeof FOUND_BACK, [string, string | null, string | 0][], ([string | null, 0 | 1 | 2] | 0)?];

function encodeSub(sub: SubscriberSummary, appUserId: string, productId: string | undefined): StoredSub {
  return [
    sub.original_app_user_id === appUserId ? 0 : sub.original_app_user_id,
    FOUND[sub.product_found],
    sub.active_entitlements.map((e) => [e.id, e.expires_date, e.product_identifier === productId ? 0 : e.product_identifier]),
    // the product's expiry and environment (0 unknown, 1 production, 2 sandbox)
    sub.product ? [sub.product.expires_date, sub.product.is_sandbox === undefined ? 0 : sub.product.is_sandbox ? 2 : 1] : 0,
  ];
}

function decodeSub(s: StoredSub, appUserId: string, productId: string | undefined): SubscriberSummary {
  return {
    original_app_user_id: s[0] === 0 ? appUserId : s[0],
    product_found: FOUND_BACK[s[1]],
    active_entitlements: s[2].map(([id, expires, product]) => ({ id, expires_date: expires, product_identifier: product === 0 ? (productId ?? '') : product })),
    ...(s[3] ? { product: { expires_date: s[3][0], ...(s[3][1] === 0 ? {} : { is_sandbox: s[3][1] === 2 }) } } : {}),
  };
}

export function encodeOutcome(o: Outcome, sourceIndex: number): string {
  const stored: Stored = [
    STATUS_CODES[o.status],
    sourceIndex,
    o.line,
    o.platform,
    o.app_user_id,
    o.product_id ?? 0,
    o.token ?? 0,
    o.http_status ?? 0,
    o.attempts,
    o.queued_at !== undefined ? Date.parse(o.queued_at) : 0,
    Date.parse(o.finished_at),
    o.code ?? 0,
    o.reason ?? 0,
    o.message ?? 0,
    o.subscriber ? encodeSub(o.subscriber, o.app_user_id, o.product_id) : 0,
    o.input ?? 0,
    o.body ?? 0,
    o.expect ?? 0,
    o.mismatches && o.mismatches.length > 0 ? o.mismatches : 0,
    o.past_google_cutoff === true ? 1 : 0,
  ];
  while (stored.length > 0 && stored[stored.length - 1] === 0) stored.pop();
  return JSON.stringify(stored);
}

export function decodeOutcome(fp: string, raw: string, sources: readonly string[]): Outcome {
  const a = JSON.parse(raw) as Stored;
  const at = (i: number): Stored[number] | undefined => {
    const v = a[i];
    return v === 0 ? undefined : v;
  };
  const appUserId = a[4] as string;
  const productId = at(5) as string | undefined;
  const sub = at(14) as StoredSub | undefined;
  const input = at(15) as Record<string, string> | undefined;
  const body = at(16) as ReceiptBody | undefined;
  const expect = at(17) as Expectations | undefined;
  const mismatches = at(18) as MismatchDetail[] | undefined;
  return {
    status: a[0] === STATUS_CODES.succeeded ? 'succeeded' : 'failed',
    src: sources[a[1] as number] ?? `source #${a[1] as number}`,
    line: a[2] as number,
    fp,
    platform: a[3] as Platform,
    app_user_id: appUserId,
    ...(productId !== undefined ? { product_id: productId } : {}),
    ...(at(6) !== undefined ? { token: a[6] as string } : {}),
    ...(at(7) !== undefined ? { http_status: a[7] as number } : {}),
    attempts: a[8] as number,
    ...(at(9) !== undefined ? { queued_at: new Date(a[9] as number).toISOString() } : {}),
    finished_at: new Date(a[10] as number).toISOString(),
    ...(at(11) !== undefined ? { code: a[11] as number } : {}),
    ...(at(12) !== undefined ? { reason: a[12] as string } : {}),
    ...(at(13) !== undefined ? { message: a[13] as string } : {}),
    ...(sub ? { subscriber: decodeSub(sub, appUserId, productId) } : {}),
    ...(input ? { input } : {}),
    ...(body ? { body } : {}),
    ...(expect ? { expect } : {}),
    ...(mismatches ? { mismatches } : {}),
    ...(a[19] === 1 ? { past_google_cutoff: true } : {}),
  };
}
