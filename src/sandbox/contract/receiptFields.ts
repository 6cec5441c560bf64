// POST /v1/receipts body fields per store, transcribed from RevenueCat's "Create a Purchase" parameter reference (data type and
// Required ✅ / Optional 🆗 / Not compatible ❌ for iOS/macOS, Google, Amazon, Stripe). The sandbox's own
// copy: the pipeline keeps another, and a misreading of the document shows up as a disagreement between them.
import { storeColumn, type Platform, type StoreColumn } from './platforms.js';

/** The reference's "Data Type" column, with the format its description adds. */
export type ReceiptFieldType =
  | 'string'
  /** "Float". */
  | 'float'
  | 'boolean'
  /** "Integer (0, 1, or 2)". */
  | 'payment_mode'
  /** "String", "must be in ISO 4217 format". */
  | 'currency'
  /** "The ISO 8601 duration". */
  | 'duration'
  /** "The ISO alpha 2 country code". */
  | 'country';

export type Requirement = 'required' | 'optional' | 'not_compatible';

type DocumentedColumn = Exclude<StoreColumn, 'undocumented'>;

interface FieldRow {
  type: ReceiptFieldType;
  /** iOS/macOS, Google, Amazon, Stripe: the four columns in the document's order. */
  columns: Record<DocumentedColumn, Requirement>;
}

const row = (type: ReceiptFieldType, apple: Requirement, google: Requirement, amazon: Requirement, stripe: Requirement): FieldRow => ({
  type,
  columns: { apple, google, amazon, stripe },
});
const R = 'required';
const O = 'optional';
const X = 'not_compatible';

/**
 * Every row of the table but `attributes` (an object with its own rules: validate.ts). In the document's order.
 * `create_events` and `should_update_last_seen_fields` are rows of the table too.
 */
export const RECEIPT_FIELD_TABLE = {
  app_user_id: row('string', R, R, R, R),
  fetch_token: row('string', R, R, R, R),
  product_id: row('string', O, R, O, X),
  price: row('float', O, O, O, X),
  currency: row('currency', O, O, O, X),
  is_restore: row('boolean', O, O, O, O),
  payment_mode: row('payment_mode', O, X, X, X),
  create_events: row('boolean', O, O, O, O),
  should_update_last_seen_fields: row('boolean', O, O, O, O),
  subscription_group_id: row('string', O, X, X, X),
  store_user_id: row('string', X, X, R, X),
  presented_offering_identifier: row('string', O, O, O, O),
  observer_mode: row('boolean', O, O, X, O),
  introductory_price: row('float', O, X, X, X),
  normal_duration: row('duration', O, X, X, X),
  intro_duration: row('duration', O, X, X, X),
  trial_duration: row('duration', O, X, X, X),
  store_country: row('country', O, X, X, X),
  ip_address: row('string', O, X, X, X),
} as const satisfies Record<string, FieldRow>;

export type ReceiptFieldName = keyof typeof RECEIPT_FIELD_TABLE;
export const RECEIPT_FIELD_NAMES = Object.keys(RECEIPT_FIELD_TABLE) as ReceiptFieldName[];

export function isReceiptFieldName(name: string): name is ReceiptFieldName {
  return Object.hasOwn(RECEIPT_FIELD_TABLE, name);
}

export function fieldType(name: ReceiptFieldName): ReceiptFieldType {
  return RECEIPT_FIELD_TABLE[name].type;
}

/**
 * What a platform's column says of a field. Roku and Paddle have no column: the sandbox accepts there only what
 * every documented store accepts, and requires only what every one requires (a choice; the documents are silent).
 */
export function requirement(name: ReceiptFieldName, platform: Platform): Requirement {
  const column = storeColumn(platform);
  const columns: Record<DocumentedColumn, Requirement> = RECEIPT_FIELD_TABLE[name].columns;
  if (column !== 'undocumented') return columns[column];
  const all = Object.values(columns);
  if (all.every((r) => r === 'required')) return 'required';
  return all.includes('not_compatible') ? 'not_compatible' : 'optional';
}
