// The one way a row's state can be found wrong: at import (the POST's answer against the row's expected_*
// columns) and afterwards (`verify`: the customer read again against the import answer and the columns).

export type MismatchKind =
  | 'user_missing'
  | 'product_missing'
  | 'entitlement_inactive'
  | 'entitlement_missing'
  | 'expiry_differs'
  | 'transferred'
  | 'environment_differs'
  /** verify only: an App Store subscription ends earlier at RevenueCat than the row's receipt says */
  | 'receipt_expiry_differs'
  /** verify only: the customer could not be read, so nothing could be compared */
  | 'read_failed';

/** Which row a mismatch is about: its place in the input, and who and what it imported. */
export interface RowRef {
  src: string;
  line: number;
  app_user_id: string;
  product_id?: string;
}

/** One difference between what a row expected (or what its import answer showed) and a customer's state. */
export interface StateMismatch extends RowRef {
  kind: MismatchKind;
  expected: string;
  actual: string;
}

/** A mismatch as a row's outcome keeps it: the row itself is the outcome's. */
export type MismatchDetail = Omit<StateMismatch, keyof RowRef>;

/** The row of a mismatch, without what it says. */
export function rowRef(row: RowRef): RowRef {
  return { src: row.src, line: row.line, app_user_id: row.app_user_id, ...(row.product_id !== undefined ? { product_id: row.product_id } : {}) };
}

/** The mismatch without its row, as an outcome stores it. */
export function detailOf(m: StateMismatch): MismatchDetail {
  return { kind: m.kind, expected: m.expected, actual: m.actual };
}
