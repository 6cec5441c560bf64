// What a migration is supposed to give a user, as a row's optional expected_* columns say it
// (../ingest/expectations.ts reads them from the cells). Carried with the row, checked against the import
// answer, kept in the outcome, and checked again by `verify`.

export type Environment = 'production' | 'sandbox';

export interface Expectations {
  /** entitlement id (lookup key) that should be active after the import */
  entitlement?: string;
  /** when that entitlement (or, without one, the row's product) should expire, ISO 8601 */
  expiresAt?: string;
  /** whether it should be active now; false for lapsed subscriptions imported for their history */
  active?: boolean;
  environment?: Environment;
}

/**
 * Expectations from a value of unknown shape (an outcome stored by any version), field by field: what is not a
 * valid expectation is left out. undefined when nothing valid is left.
 */
export function parseExpectations(raw: unknown): Expectations | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const e = raw as Record<string, unknown>;
  const out: Expectations = {};
  if (typeof e.entitlement === 'string' && e.entitlement !== '') out.entitlement = e.entitlement;
  if (typeof e.expiresAt === 'string' && !Number.isNaN(Date.parse(e.expiresAt))) out.expiresAt = e.expiresAt;
  if (e.environment === 'production' || e.environment === 'sandbox') out.environment = e.environment;
  if (typeof e.active === 'boolean') out.active = e.active;
  return Object.keys(out).length > 0 ? out : undefined;
}
