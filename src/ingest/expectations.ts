// Optional expected-state columns: what the migration is supposed to give each user, read from the row's
// expected_* cells. What they mean, and how they are checked, is ../state (expectations, compareState).
import type { Expectations } from '../state/expectations.js';

export const EXPECTATION_COLUMNS = ['expected_entitlement', 'expected_expires_at', 'expected_active', 'expected_environment'] as const;

export function isExpectationColumn(column: string): boolean {
  return (EXPECTATION_COLUMNS as readonly string[]).includes(column.trim().toLowerCase());
}

const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no']);

/** Dates as ISO 8601 or epoch seconds/milliseconds, the forms exports use. */
function parseDate(value: string): string | undefined {
  if (/^\d{10}$/.test(value)) return new Date(Number(value) * 1000).toISOString();
  if (/^\d{13}$/.test(value)) return new Date(Number(value)).toISOString();
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** Reads the expected_* cells of a row; empty cells mean no expectation. */
export function readExpectations(values: Record<string, string>): { ok: true; expect?: Expectations } | { ok: false; reason: string } {
  const cell = (name: string): string | undefined => {
    for (const [k, v] of Object.entries(values)) if (k.trim().toLowerCase() === name && v.trim() !== '') return v.trim();
    return undefined;
  };
  const expect: Expectations = {};
  const entitlement = cell('expected_entitlement');
  if (entitlement) expect.entitlement = entitlement;
  const expires = cell('expected_expires_at');
  if (expires) {
    const iso = parseDate(expires);
    if (!iso) return { ok: false, reason: `expected_expires_at "${expires}" is not a date: use ISO 8601 (2026-12-31T00:00:00Z) or epoch seconds` };
    expect.expiresAt = iso;
  }
  const active = cell('expected_active')?.toLowerCase();
  if (active !== undefined) {
    if (!TRUE.has(active) && !FALSE.has(active)) return { ok: false, reason: `expected_active "${active}" must be true or false` };
    expect.active = TRUE.has(active);
  }
  const env = cell('expected_environment')?.toLowerCase();
  if (env !== undefined) {
    if (env !== 'production' && env !== 'sandbox') return { ok: false, reason: `expected_environment "${env}" must be production or sandbox` };
    expect.environment = env;
  }
  return { ok: true, ...(Object.keys(expect).length > 0 ? { expect } : {}) };
}
