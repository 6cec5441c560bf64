// Source templates: the firing day in the schedule's time zone, and days back by the calendar.
import { describe, expect, it } from 'vitest';
import { expandTemplate } from '../src/schedule/template.js';

describe('source templates', () => {
  const at = Date.parse('2026-03-29T01:30:00Z'); // 03:30 in Berlin, the night clocks go forward

  it("fills in the firing day in the schedule's zone", () => {
    expect(expandTemplate('s3://exports/{yyyy}-{mm}-{dd}/', { at })).toBe('s3://exports/2026-03-29/');
    expect(expandTemplate('day={date} at {HH}{MM}', { at, tz: 'Europe/Berlin' })).toBe('day=2026-03-29 at 0330');
    expect(expandTemplate('{date}', { at: Date.parse('2026-03-28T23:30:00Z'), tz: 'Europe/Berlin' })).toBe('2026-03-29');
    expect(expandTemplate('{date}', { at: Date.parse('2026-03-28T23:30:00Z'), tz: 'America/New_York' })).toBe('2026-03-28');
  });

  it('counts days back by the calendar, across month ends and DST', () => {
    expect(expandTemplate('{date}', { at, tz: 'Europe/Berlin', daysAgo: 1 })).toBe('2026-03-28');
    expect(expandTemplate('{date}', { at: Date.parse('2026-03-01T02:00:00Z'), daysAgo: 1 })).toBe('2026-02-28');
    expect(expandTemplate('{date}', { at: Date.parse('2028-03-01T02:00:00Z'), daysAgo: 1 })).toBe('2028-02-29');
  });
});
