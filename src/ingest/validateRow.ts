// One CSV row → the POST /v1/receipts body, or the reason it cannot be sent.
// Which field each store accepts, and the field types, come from the field table in ../revenuecat/fields.ts;
// this file only turns cell text into typed values and reasons a user can act on.
//
// Cell handling:
// - An empty (or whitespace-only) cell means "not given".
// - Values are trimmed of surrounding whitespace (exports pad cells), except app_user_id, which RevenueCat compares
//   exactly: surrounding whitespace there is a reason to refuse the row (appUserIdProblem).
// - fetch_token is trimmed too and otherwise sent as is; it never appears in a reason.
// - currency and store_country are upper-cased, ISO 8601 durations too (p1m → P1M).
// - Formula-looking text (=, +, -, @ first) is data like any other: not refused here (report writers escape it).
// - Attribute values are trimmed; empty ones are left out; over 500 characters (RevenueCat's limit) refuses the row.

import { isIP } from 'node:net';
import { ISO_4217, PLATFORMS, RECEIPT_FIELDS, RECEIPT_FIELD_NAMES, appUserIdProblem, fieldSupport, isIsoDuration, parsePlatform } from '../revenuecat/fields.js';
import type { FieldType, Platform, ReceiptBody, ReceiptField, Store, SubscriberAttribute } from '../revenuecat/fields.js';
import type { KeyPlan } from '../revenuecat/keyRing.js';
import { APPLE_PLATFORMS, transactionIdProblem, type AppleLookup } from '../appstore/lookup/transactionLookup.js';
import type { ColumnPlan } from './columns.js';

/** `lookup`: an App Store row without a token whose transaction id the worker looks up (body.fetch_token holds the id). */
export type RowResult = { ok: true; platform: Platform; body: ReceiptBody; lookup?: AppleLookup } | { ok: false; reason: string };

/** RevenueCat's documented limit for one attribute value. */
export const MAX_ATTRIBUTE_VALUE_LENGTH = 500;

const STORE_LABEL: Record<Exclude<Store, 'other'>, string> = { apple: 'iOS/macOS', google: 'Google Play', amazon: 'Amazon', stripe: 'Stripe' };
const PAYMENT_MODES: Record<string, 0 | 1 | 2> = { '0': 0, '1': 1, '2': 2, pay_as_you_go: 0, pay_up_front: 1, free_trial: 2 };
const BOOLEANS: Record<string, boolean> = { true: true, false: false, '1': true, '0': false, yes: true, no: false };
const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

type Value = string | number | boolean;

/**
 * `keys`: the platforms the run has an API key for; a row of another platform is rejected with a reason that names
 * the variable to set (checked last, so a row rejected for it is otherwise ready to send).
 */
export function validateRow(values: Record<string, string>, plan: ColumnPlan, opts: { platform?: Platform; now?: () => number; keys?: KeyPlan }): RowResult {
  const columnOf = new Map<ReceiptField | 'platform', string>();
  for (const [column, target] of Object.entries(plan.fields)) columnOf.set(target, column);
  const cell = (column: string | undefined): string => (column === undefined ? '' : (values[column] ?? ''));

  // Platform: a non-empty platform cell wins over --platform.
  const platformColumn = columnOf.get('platform');
  const platformCell = cell(platformColumn).trim();
  let platform: Platform | undefined = opts.platform;
  if (platformCell !== '') {
    platform = parsePlatform(platformCell);
    if (platform === undefined) return fail(`platform "${clip(platformCell)}"${at('platform', platformColumn)} is not one RevenueCat accepts; use one of ${PLATFORMS.join(', ')}`);
  }
  if (platform === undefined) {
    return fail(
      platformColumn === undefined
        ? 'no platform for this row: add a platform column or pass --platform'
        : `the platform cell${at('platform', platformColumn)} is empty and no --platform was given; fill it in (${PLATFORMS.join(', ')})`,
    );
  }

  // App User ID: checked on the exact cell text.
  const userColumn = columnOf.get('app_user_id');
  const appUserId = cell(userColumn);
  const userProblem = appUserIdProblem(appUserId);
  if (userProblem !== undefined) return fail(`${userProblem}${at('app_user_id', userColumn)}`);

  // Which fields the row gives (non-empty cells), then presence rules per store.
  const given = new Map<ReceiptField, string>();
  for (const field of RECEIPT_FIELD_NAMES) {
    const text = cell(columnOf.get(field)).trim();
    if (text !== '') given.set(field, text);
  }
  // An App Store row without a token may carry its transaction id: the worker looks it up (a token wins).
  let lookup: AppleLookup | undefined;
  const transactionId = cell(plan.transactionId).trim();
  if (!given.has('fetch_token') && transactionId !== '' && plan.transactionId !== undefined && APPLE_PLATFORMS.includes(platform)) {
    const problem = transactionIdProblem(transactionId, plan.transactionId);
    if (problem !== undefined) return fail(problem);
    const bundleId = cell(plan.bundleId).trim();
    if (bundleId !== '' && !/^[A-Za-z0-9.-]+$/.test(bundleId))
      return fail(`bundle_id "${clip(bundleId)}"${at('bundle_id', plan.bundleId)} is not a bundle id such as com.example.app`);
    given.set('fetch_token', transactionId);
    lookup = { transaction_id: transactionId, ...(bundleId !== '' ? { bundle_id: bundleId } : {}) };
  }
  for (const field of RECEIPT_FIELD_NAMES) {
    if (fieldSupport(field, platform) !== 'required' || given.has(field) || field === 'app_user_id') continue;
    const column = columnOf.get(field);
    if (field === 'fetch_token') {
      return fail(
        `fetch_token${at(field, column)} is empty; every row needs its receipt or token${plan.transactionId !== undefined && APPLE_PLATFORMS.includes(platform) ? ' (or, for App Store rows, a transaction_id)' : ''}`,
      );
    }
    return fail(
      column === undefined ? `${field} is required for ${platform} rows; add a ${field} column` : `${field}${at(field, column)} is empty; it is required for ${platform} rows`,
    );
  }
  for (const field of given.keys()) {
    if (fieldSupport(field, platform) === 'no') return fail(notAccepted(field, platform, columnOf.get(field)));
  }
  if (given.has('price') !== given.has('currency')) {
    const [has, lacks] = given.has('price') ? ['price', 'currency'] : ['currency', 'price'];
    return fail(`${has} is given without ${lacks}; give both (for example 9.99 and USD) or neither`);
  }

  // Types.
  const body: Record<string, Value> = { app_user_id: appUserId };
  for (const [field, text] of given) {
    if (field === 'app_user_id') continue;
    const parsed = parseValue(field, RECEIPT_FIELDS[field].type, text, columnOf.get(field));
    if (typeof parsed === 'object') return fail(parsed.reason);
    body[field] = parsed;
  }

  // Attributes.
  let attributes: Record<string, SubscriberAttribute> | undefined;
  let now: number | undefined;
  for (const [column, name] of Object.entries(plan.attributes)) {
    const value = cell(column).trim();
    if (value === '') continue;
    if (value.length > MAX_ATTRIBUTE_VALUE_LENGTH) {
      return fail(
        `attribute ${name}${column === name ? '' : ` (column "${column}")`} is ${value.length} characters long; RevenueCat accepts at most ${MAX_ATTRIBUTE_VALUE_LENGTH}`,
      );
    }
    now ??= (opts.now ?? Date.now)();
    attributes ??= {};
    Object.defineProperty(attributes, name, { value: { value, updated_at_ms: now }, enumerable: true, writable: true, configurable: true });
  }

  if (opts.keys && !opts.keys.has(platform)) return fail(opts.keys.missing(platform));

  const receipt = body as unknown as ReceiptBody;
  if (attributes !== undefined) receipt.attributes = attributes;
  return { ok: true, platform, body: receipt, ...(lookup ? { lookup } : {}) };
}

function parseValue(field: ReceiptField, type: FieldType, text: string, column: string | undefined): Value | { reason: string } {
  const where = at(field, column);
  switch (type) {
    case 'string':
      if (field === 'ip_address' && isIP(text) === 0) return { reason: `ip_address "${clip(text)}"${where} is not an IPv4 or IPv6 address` };
      return text;
    case 'number': {
      if (text.startsWith('-') && DECIMAL.test(text.slice(1))) return { reason: `${field} ${clip(text)}${where} is negative; it must be 0 or more` };
      const n = Number(text);
      if (!DECIMAL.test(text) || !Number.isFinite(n)) return { reason: `${field} "${clip(text)}"${where} is not a plain decimal number such as 9.99` };
      return n;
    }
    case 'currency': {
      const code = text.toUpperCase();
      if (!ISO_4217.has(code)) return { reason: `currency "${clip(text)}"${where} is not an ISO 4217 code such as USD or EUR` };
      return code;
    }
    case 'boolean': {
      const b = BOOLEANS[text.toLowerCase()];
      if (b === undefined) return { reason: `${field} "${clip(text)}"${where} must be true or false (1/0 and yes/no work too)` };
      return b;
    }
    case 'payment_mode': {
      const mode = PAYMENT_MODES[text.toLowerCase().replace(/[\s-]+/g, '_')];
      if (mode === undefined) return { reason: `payment_mode "${clip(text)}"${where} must be 0 (pay_as_you_go), 1 (pay_up_front) or 2 (free_trial)` };
      return mode;
    }
    case 'duration': {
      const duration = text.toUpperCase();
      if (!isIsoDuration(duration)) return { reason: `${field} "${clip(text)}"${where} is not an ISO 8601 duration such as P1M, P1Y or P7D` };
      return duration;
    }
    case 'country': {
      const country = text.toUpperCase();
      if (!/^[A-Z]{2}$/.test(country)) return { reason: `store_country "${clip(text)}"${where} must be a two-letter country code such as US` };
      return country;
    }
  }
}

/** "payment_mode is iOS/macOS only; remove it for android rows", from the field table. */
function notAccepted(field: ReceiptField, platform: Platform, column: string | undefined): string {
  const support = RECEIPT_FIELDS[field].support;
  const accepting = (Object.keys(STORE_LABEL) as (keyof typeof STORE_LABEL)[]).filter((s) => support[s] !== 'no');
  if (accepting.length === 1 && accepting[0] !== undefined) return `${field}${at(field, column)} is ${STORE_LABEL[accepting[0]]} only; remove it for ${platform} rows`;
  return `${field}${at(field, column)} is not accepted for ${platform} rows; remove it`;
}

/** ` (column "x")` when the column is not named as the field. */
function at(field: string, column: string | undefined): string {
  return column === undefined || column === field ? '' : ` (column "${column}")`;
}

function clip(text: string): string {
  return text.length <= 40 ? text : `${text.slice(0, 37)}…`;
}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}
