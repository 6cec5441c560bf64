// Source templates of scheduled runs: `s3://exports/receipts/{yyyy}-{mm}-{dd}/` becomes the path of the day the
// run fires for, in the schedule's time zone (3 a.m. in Berlin is still yesterday in UTC).

export interface TemplateDate {
  /** the moment the run fires (epoch ms) */
  at: number;
  /** IANA zone, e.g. Europe/Berlin; default UTC */
  tz?: string;
  /** 1 = the day before the firing day, as nightly exports of "yesterday" need */
  daysAgo?: number;
}

/** Calendar parts of a moment in a zone. */
function partsIn(at: number, tz: string): Record<'yyyy' | 'mm' | 'dd' | 'HH' | 'MM', string> {
  const fmt = new Intl.DateTimeFormat('en-GB', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const parts = Object.fromEntries(fmt.formatToParts(new Date(at)).map((p) => [p.type, p.value]));
  return { yyyy: parts.year ?? '', mm: parts.month ?? '', dd: parts.day ?? '', HH: parts.hour ?? '', MM: parts.minute ?? '' };
}

export function expandTemplate(template: string, when: TemplateDate): string {
  const tz = when.tz ?? 'UTC';
  const day = partsIn(when.at, tz);
  // Shift by whole calendar days from the local date, not by 24-hour steps (DST days are 23 or 25 hours).
  const local = new Date(Date.UTC(Number(day.yyyy), Number(day.mm) - 1, Number(day.dd) - (when.daysAgo ?? 0)));
  const yyyy = String(local.getUTCFullYear());
  const mm = String(local.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(local.getUTCDate()).padStart(2, '0');
  return template
    .replaceAll('{yyyy}', yyyy)
    .replaceAll('{mm}', mm)
    .replaceAll('{dd}', dd)
    .replaceAll('{date}', `${yyyy}-${mm}-${dd}`)
    .replaceAll('{HH}', day.HH)
    .replaceAll('{MM}', day.MM);
}
