// Header → body fields. Decides, once per file, what each column is used for.
//
// Rules, in order of precedence for one column:
//   1. `map` (--map column=target): target is a body field name, `platform`, `expires_at` (the token's expiry, used
//      to order Google rows; never sent), or an attribute name starting with `$`.
//   2. `attributes` (--attribute column): the column becomes a subscriber attribute named as the column.
//   3. A canonical field name or an alias below (case-insensitive, trimmed); `expires_at` / `expiry_time_ms` are the
//      expiry column; `transaction_id` and `bundle_id` are read for App Store rows' lookups (never sent as such).
//   4. A name starting with `$` becomes the attribute of exactly that name ($email → $email).
//   5. Anything else is ignored: kept in the input (and so in reports), never sent.
// When a field is reached by an explicit --map, other columns reaching it only through rules 3 are ignored
// (that is how a user picks between `receipt` and `token`). Two columns with the same field otherwise refuse the file.

import { PLATFORMS, RECEIPT_FIELD_NAMES, fieldSupport, isReceiptField } from '../revenuecat/fields.js';
import type { Platform, ReceiptField } from '../revenuecat/fields.js';

export interface ColumnOptions {
  /** The platform of every row without a (non-empty) platform column value. */
  platform?: Platform;
  /** column → field (`--map column=field`). */
  map?: Record<string, string>;
  /** Columns sent as subscriber attributes under their own name. */
  attributes?: string[];
}

export interface ColumnPlan {
  /** column → the body field (or the row's platform) it carries. */
  fields: Record<string, ReceiptField | 'platform'>;
  /** column → subscriber attribute name. */
  attributes: Record<string, string>;
  /** Columns not sent (kept for reports). */
  ignored: string[];
  /** The column holding each row's token expiry (see tokenExpiry.ts): read, never sent. Absent when the file has none. */
  expiry?: string;
  /** The column of App Store rows' transaction ids, looked up when the row has no token (appstore/lookup). */
  transactionId?: string;
  /** The column naming each App Store row's app (its bundle id), for the lookup's JWT. */
  bundleId?: string;
}

/**
 * The only names recognised besides the canonical field names (which are matched case-insensitively too).
 * They come from RevenueCat's own bulk-import CSVs (`receipt`, `token`, `subscription_token`) and common exports.
 */
export const COLUMN_ALIASES: Readonly<Record<string, ReceiptField | 'platform'>> = {
  receipt: 'fetch_token',
  token: 'fetch_token',
  subscription_token: 'fetch_token',
  purchase_token: 'fetch_token',
  fetch_token: 'fetch_token',
  platform: 'platform',
  store: 'platform',
  'x-platform': 'platform',
  user_id: 'app_user_id',
  app_user_id: 'app_user_id',
};

/** The target of the expiry column, and the names that make a column it without --map (lower case). */
export const EXPIRY_TARGET = 'expires_at';
export const EXPIRY_COLUMN_NAMES: readonly string[] = ['expires_at', 'expiry_time_ms'];
/** Targets of columns read for the App Store Server API lookup (issue 17), never sent as they are. */
export const TRANSACTION_ID_TARGET = 'transaction_id';
export const BUNDLE_ID_TARGET = 'bundle_id';

/** Lower-case column names read as the row's platform (for report writers that add a platform column). */
export const PLATFORM_COLUMN_NAMES: readonly string[] = Object.keys(COLUMN_ALIASES).filter((name) => COLUMN_ALIASES[name] === 'platform');

/** RevenueCat's documented attribute limits: at most 50 attributes, names up to 40 characters without whitespace. */
export const MAX_ATTRIBUTES = 50;
export const MAX_ATTRIBUTE_NAME_LENGTH = 40;

type Target = ReceiptField | 'platform' | typeof EXPIRY_TARGET | typeof TRANSACTION_ID_TARGET | typeof BUNDLE_ID_TARGET;

export function planColumns(columns: string[], opts: ColumnOptions): { plan: ColumnPlan } | { error: string } {
  const names = columns.map((c) => c.trim());

  const only = names[0];
  if (names.length === 1 && only !== undefined) {
    const sep = [';', '\t', '|'].find((s) => only.includes(s));
    if (sep !== undefined) {
      const shown = sep === '\t' ? 'tabs' : `"${sep}"`;
      return { error: `the header is a single column "${only}": the file seems to use ${shown} between columns; save it as comma-separated CSV` };
    }
  }

  // Explicit choices first: --map and --attribute, each naming an existing column.
  const explicitField = new Map<string, Target>();
  const attributes = new Map<string, string>();
  for (const [key, rawTarget] of Object.entries(opts.map ?? {})) {
    const column = findColumn(names, key);
    if (column === undefined) return { error: `--map ${key}=${rawTarget}: the file has no column "${key}" (columns: ${names.join(', ')})` };
    const target = mapTarget(rawTarget);
    if ('error' in target) return { error: `--map ${key}=${rawTarget}: ${target.error}` };
    if ('attribute' in target) attributes.set(column, target.attribute);
    else explicitField.set(column, target.field);
  }
  for (const name of opts.attributes ?? []) {
    const column = findColumn(names, name);
    if (column === undefined) return { error: `--attribute ${name}: the file has no column "${name}" (columns: ${names.join(', ')})` };
    if (explicitField.has(column) || attributes.has(column)) return { error: `column "${column}" is given both to --map and to --attribute; keep one` };
    attributes.set(column, column);
  }

  // Automatic choices for the remaining columns.
  const automaticField = new Map<string, Target>();
  for (const column of names) {
    if (explicitField.has(column) || attributes.has(column)) continue;
    const known = aliasOf(column);
    if (known !== undefined) automaticField.set(column, known);
    else if (column.startsWith('$')) attributes.set(column, column);
  }

  // One column per field: an explicit --map wins over names; otherwise two columns for one field is an error.
  const fields: Record<string, Target> = {};
  const ignored: string[] = [];
  const byTarget = new Map<Target, Claims>();
  for (const [column, target] of explicitField) entry(byTarget, target).explicit.push(column);
  for (const [column, target] of automaticField) entry(byTarget, target).automatic.push(column);
  for (const [target, { explicit, automatic }] of byTarget) {
    if (explicit.length > 1) return { error: `--map sends columns ${quoteList(explicit)} all to ${target}; map only one of them` };
    if (explicit.length === 1 && explicit[0] !== undefined) {
      fields[explicit[0]] = target;
      ignored.push(...automatic);
    } else if (automatic.length > 1) {
      return { error: `columns ${quoteList(automatic)} would all be ${target}; remove all but one, or choose with --map ${automatic[0]}=${target}` };
    } else if (automatic[0] !== undefined) {
      fields[automatic[0]] = target;
    }
  }

  // Attribute names: unique, and within RevenueCat's limits.
  const attributeNames = new Map<string, string>();
  for (const [column, name] of attributes) {
    const other = attributeNames.get(name);
    if (other !== undefined) return { error: `columns "${other}" and "${column}" would both be the attribute ${name}; keep one` };
    attributeNames.set(name, column);
    if (name.length > MAX_ATTRIBUTE_NAME_LENGTH)
      return { error: `attribute name "${name}" is longer than ${MAX_ATTRIBUTE_NAME_LENGTH} characters, which RevenueCat refuses; rename the column or use --map` };
    if (/\s/.test(name)) return { error: `attribute name "${name}" contains whitespace, which RevenueCat refuses; rename the column or use --map` };
  }
  if (attributes.size > MAX_ATTRIBUTES) return { error: `${attributes.size} columns would be attributes; RevenueCat accepts at most ${MAX_ATTRIBUTES}` };

  const used = new Set<string>([...Object.keys(fields), ...attributes.keys()]);
  for (const column of names) if (!used.has(column) && !ignored.includes(column)) ignored.push(column);

  // The expiry column is read (to order and flag Google rows), not sent: it is kept apart from the body fields.
  let expiry: string | undefined;
  let transactionId: string | undefined;
  let bundleId: string | undefined;
  const bodyFields: Record<string, ReceiptField | 'platform'> = {};
  for (const [column, target] of Object.entries(fields)) {
    if (target === EXPIRY_TARGET) expiry = column;
    else if (target === TRANSACTION_ID_TARGET) transactionId = column;
    else if (target === BUNDLE_ID_TARGET) bundleId = column;
    else bodyFields[column] = target;
  }

  // The whole file is refused when a row could never be valid.
  const has = (target: Target): boolean => (Object.values(bodyFields) as Target[]).includes(target);
  if (!has('app_user_id')) return { error: 'no column for app_user_id: name it app_user_id or user_id, or pass --map yourcolumn=app_user_id' };
  if (!has('fetch_token') && transactionId === undefined)
    return { error: 'no column for fetch_token: name it fetch_token, receipt, token, subscription_token or purchase_token, or pass --map yourcolumn=fetch_token' };
  if (!has('platform')) {
    if (opts.platform === undefined) return { error: `no platform: add a platform column (store or x-platform work too) or pass --platform (one of ${PLATFORMS.join(', ')})` };
    // Every row has this platform: a field it requires must have a column.
    for (const field of RECEIPT_FIELD_NAMES) {
      if (fieldSupport(field, opts.platform) === 'required' && !has(field) && !(field === 'fetch_token' && transactionId !== undefined)) {
        return { error: `${opts.platform} rows require ${field}: add a ${field} column, or pass --map yourcolumn=${field}` };
      }
    }
  }

  return {
    plan: {
      fields: bodyFields,
      attributes: Object.fromEntries(attributes),
      ignored,
      ...(expiry === undefined ? {} : { expiry }),
      ...(transactionId === undefined ? {} : { transactionId }),
      ...(bundleId === undefined ? {} : { bundleId }),
    },
  };
}

/**
 * What a `--map column=target` target names: a body field (any case: Fetch_Token is fetch_token), the row's
 * `platform`, or a subscriber attribute (`$email`). The one rule for --map, for the CLI and the library alike.
 */
export function mapTarget(rawTarget: string): { field: Target } | { attribute: string } | { error: string } {
  const target = rawTarget.trim();
  if (target.startsWith('$')) return { attribute: target };
  const lower = target.toLowerCase();
  if (lower === 'platform' || lower === EXPIRY_TARGET || lower === TRANSACTION_ID_TARGET || lower === BUNDLE_ID_TARGET || isReceiptField(lower)) return { field: lower };
  return {
    error: `"${target}" is not a field; use one of ${[...RECEIPT_FIELD_NAMES, TRANSACTION_ID_TARGET, BUNDLE_ID_TARGET, 'platform', EXPIRY_TARGET].join(', ')}, or a $attribute name (anything else is not a POST /v1/receipts field)`,
  };
}

function aliasOf(column: string): Target | undefined {
  const key = column.trim().toLowerCase();
  if (Object.hasOwn(COLUMN_ALIASES, key)) return COLUMN_ALIASES[key];
  if (EXPIRY_COLUMN_NAMES.includes(key)) return EXPIRY_TARGET;
  if (key === TRANSACTION_ID_TARGET || key === BUNDLE_ID_TARGET) return key;
  return isReceiptField(key) ? key : undefined;
}

/** The column an option names: exactly, else the only one equal to it ignoring case and surrounding whitespace. */
function findColumn(names: string[], wanted: string): string | undefined {
  if (names.includes(wanted)) return wanted;
  const key = wanted.trim().toLowerCase();
  const matches = names.filter((n) => n.toLowerCase() === key);
  return matches.length === 1 ? matches[0] : undefined;
}

interface Claims {
  explicit: string[];
  automatic: string[];
}

function entry(map: Map<Target, Claims>, key: Target): Claims {
  let claims = map.get(key);
  if (claims === undefined) {
    claims = { explicit: [], automatic: [] };
    map.set(key, claims);
  }
  return claims;
}

function quoteList(items: string[]): string {
  return items.map((i) => `"${i}"`).join(' and ');
}
