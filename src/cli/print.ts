// What the commands print on stdout: a run's summary, a status, one-line answers. Logs and progress go to stderr.
import type { PlanFiles, Plan } from '../commands/plan.js';
import type { RunStatus } from '../commands/status.js';
import type { IngestResult } from '../ingest/ingester.js';
import type { Summary } from '../reports/summary.js';
import type { ScheduleInfo } from '../schedule/scheduler.js';
import type { VerifyResult } from '../verify/verifyRun.js';
import { describeRate } from '../workers/rate/sharedRate.js';

/** `next`: after a canary, the command that sends the rest (cli/nextCommand.ts). */
export function summaryText(summary: Summary, dir: string, next?: string): string {
  const rows: [string, string | number][] = [
    ['rows read', summary.rows_read],
    ['succeeded', summary.rows_succeeded],
    ['failed', summary.rows_failed],
    ['rejected', summary.rows_rejected],
    ['duplicates', summary.rows_duplicate],
    ['already migrated', summary.already_migrated],
    ...(summary.rows_updated > 0 ? ([['updated', `${summary.rows_updated} (changed since migrated: sent again)`]] as [string, string][]) : []),
    ...(summary.rows_conflict > 0 ? ([['conflicts', `${summary.rows_conflict}, ${summary.rows_held} held (conflicts.csv)`]] as [string, string][]) : []),
    ['not as expected', summary.rows_mismatched + (summary.verify?.mismatched ?? 0)],
    ['still queued', summary.rows_pending],
    ['requests sent', requestsText(summary)],
    ['report', dir],
  ];
  const status = summary.canary && summary.status === 'partial' ? `partial: a canary of ${summary.canary.sent} rows (--limit ${summary.canary.limit})` : summary.status;
  const lines = [`run ${summary.run_id}: ${status}`, ...rows.map(([k, v]) => `  ${k.padEnd(17)} ${v}`)];
  if (summary.fatal) lines.push(`  STOPPED: ${summary.fatal.message}`, '  fix the cause and run the same command again: queued rows are kept');
  if (summary.status === 'partial' && next) {
    lines.push('', 'Check these rows in RevenueCat (and the report), then send the rest, nothing twice, with:', `  ${next}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Requests sent, with the answers that were retried without spending a row's attempts: 429s and 529s apart. */
function requestsText(s: Summary): string {
  const apart = [
    s.requests_rate_limited > 0 ? `${s.requests_rate_limited} answered 429` : '',
    s.requests_in_process > 0 ? `${s.requests_in_process} answered 529 (token in process)` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return apart ? `${s.requests_sent} (${apart})` : String(s.requests_sent);
}

export function planText(plan: Plan, files: PlanFiles): string {
  const perPlatform = Object.entries(plan.rows_per_platform)
    .map(([platform, n]) => `${platform} ${n} (${plan.to_send_per_platform[platform as keyof typeof plan.to_send_per_platform] ?? 0} to send)`)
    .join(' · ');
  const rows: [string, string | number][] = [
    ['rows read', plan.rows_read],
    ['to send', plan.rows_to_send],
    ['per platform', perPlatform || '-'],
    ['rejected', plan.rows_rejected],
    ['duplicates', plan.rows_duplicate],
    ['conflicts', `${plan.conflicts}${plan.conflicts > 0 ? `, ${plan.conflicts_held} would be held (conflicts.csv)` : ''}`],
    ['already migrated', plan.already_migrated],
    ['updated', `${plan.updated}${plan.updated > 0 ? ' (changed since migrated: would be sent again)' : ''}`],
    ['past Google cut-off', plan.past_google_cutoff],
    ...(plan.apple_lookups > 0
      ? [['Apple lookups', `${plan.apple_lookups} transaction ids to look up${plan.apple_lookups_need ? `; needs: ${plan.apple_lookups_need}` : ''}`] as [string, string]]
      : []),
    ['ETA', plan.eta.text],
    ['plan', files.dir],
  ];
  const lines = [`plan: nothing was sent${plan.interrupted ? ' (interrupted: the counts cover the rows read so far)' : ''}`, ...rows.map(([k, v]) => `  ${k.padEnd(20)} ${v}`)];
  return `${lines.join('\n')}\n`;
}

export function statusText(runId: string, st: RunStatus): string {
  const s = st.state;
  const eta = st.etaSeconds === null ? 'unknown' : `${Math.floor(st.etaSeconds / 60)}m${String(st.etaSeconds % 60).padStart(2, '0')}s`;
  const lines = [
    `run ${runId}: ${st.status}${st.fatal ? ` (${st.fatal})` : ''}`,
    `  read ${s.rows_read} · queued ${s.rows_queued} · succeeded ${s.rows_succeeded} · failed ${s.rows_failed} · rejected ${s.rows_rejected} · duplicates ${s.rows_duplicate} · already migrated ${s.rows_already_migrated}`,
    `  pace ${st.rowsPerSecond.toFixed(1)} rows/s${st.sharedRate ? ` · ${describeRate(st.sharedRate)}` : ''} · waiting in queue ${st.queueWaiting} · ETA ${eta}`,
  ];
  if (st.appleRate) lines.push(`  App Store Server API lookups: ${describeRate(st.appleRate).replace(/^request rate /, '')}`);
  if (st.recentErrors.length > 0) {
    lines.push('  last errors:');
    for (const e of st.recentErrors.slice(0, 5)) lines.push(`    ${e.at} ${e.src}:${e.line} ${e.reason}: ${e.message}`);
  }
  return `${lines.join('\n')}\n`;
}

export function ingestText(runId: string, r: IngestResult): string {
  const conflicts = r.conflicts > 0 ? `, conflicts ${r.conflicts} (${r.held} held: conflicts.csv)` : '';
  const updated = r.updated > 0 ? `, updated ${r.updated} (changed since migrated)` : '';
  return `run ${runId}: queued ${r.queued}, rejected ${r.rejected}, duplicates ${r.duplicates}, already migrated ${r.alreadyMigrated}${updated}${conflicts}, already done ${r.alreadyDone}, resumed past ${r.resumedRows}${r.aborted ? ' (interrupted)' : ''}\n`;
}

export function verifyText(runId: string, r: VerifyResult): string {
  const receipts = r.receipts;
  const receiptText = receipts
    ? `; App Store receipts compared: ${receipts.read}${receipts.unavailable > 0 ? `, ${receipts.unavailable} not read again (${receipts.unavailableReason ?? 'unknown'})` : ''}`
    : '';
  return `verify ${runId}: ${r.checked} rows of ${r.users} users checked, ${r.matched} as expected, ${r.checked - r.matched} not (mismatches.csv)${receiptText}${r.aborted ? `; STOPPED: ${r.aborted.message}` : ''}\n`;
}

export function scheduleListText(all: ScheduleInfo[]): string {
  if (all.length === 0) return 'no schedules\n';
  return all.map((s) => `${s.id}\t${s.cron}${s.tz ? ` (${s.tz})` : ''}\tnext ${s.next ?? '-'}\t${s.sources.join(' ')}\n`).join('');
}

export function scheduleAddedText(info: ScheduleInfo): string {
  return `schedule ${info.id}: ${info.cron}${info.tz ? ` (${info.tz})` : ''}, next run ${info.next ?? 'unknown'}; start \`rc-migrate work\` to carry it out\n`;
}
