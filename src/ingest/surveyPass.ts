// The ingest's first pass over a run's sources, when they may hold App Store rows: every row is read, planned and
// checked exactly as the sending pass will (rowCheck.ts), with no ledger write and nothing queued, and each valid
// App Store row's token is read (appstore/readToken.ts) into a ReceiptSurvey (surveyBook.ts; on a worker thread
// beside the pass when there is one, surveyThread.ts). Reading is fast and sending is slow,
// so a second read of the sources buys the right to skip every receipt a newer one of the same user carries,
// whatever order the rows come in. A resumed ingest makes the pass again: the survey is deterministic, so a row
// gets the same decision on every ingest of the run. Rows given by a transaction id are only counted per user
// (lookupGroupCount.ts): what they hold is known after their lookups, and compared then (ledger/lookupGroups.ts).
// What the sending pass needs of each token read here (the rules' verdict, the queue order, the purchases to look
// up) is kept by place (tokenFacts.ts), so the sending pass does not read the token again.
import type { Platform } from '../revenuecat/fields.js';
import { recordKey, tokenFingerprint } from '../ledger/rowIdentity.js';
import { planColumns, type ColumnOptions, type ColumnPlan } from './columns.js';
import type { SurveyDecision, SurveyPlace, SurveyResult } from './receiptSurvey.js';
import { asRead, checkRow, type RowCheckOptions } from './rowCheck.js';
import { LookupGroupCount, type LookupGroupSizes } from './lookupGroupCount.js';
import { TokenFactStore, type TokenFacts } from './tokenFacts.js';
import type { AppleRowRules } from './surveyBook.js';
import { bookKeeper, threadKeeper, type SurveyKeeper } from './surveyThread.js';
import type { SourceEntry } from './sources.js';

/** The platforms whose fetch token is an App Store receipt or signed transaction. */
export const APPLE_PLATFORMS: ReadonlySet<Platform> = new Set<Platform>(['ios', 'macos', 'uikitformac']);

export function isApplePlatform(platform: Platform): boolean {
  return APPLE_PLATFORMS.has(platform);
}

/** Whether a run's rows may be App Store rows: not when --platform names another store (a platform cell is anything). */
export function mayHoldAppleRows(columns: ColumnOptions): boolean {
  return columns.platform === undefined || isApplePlatform(columns.platform);
}

/** Places as one number, for the few aliases kept (a source's number × 2^32 + line). */
const placeKey = (p: SurveyPlace): number => p.source * 2 ** 32 + p.line;

/**
 * What the sending pass asks of the survey. A token seen twice for one user is one row to the survey (the ledger
 * reports the later rows as duplicates); but when the first of them is superseded it is never admitted, so a
 * later copy would be admitted and sent in its stead: such a copy takes the first one's decision.
 */
export class SurveyDecisions {
  constructor(
    readonly result: SurveyResult,
    private readonly aliases: ReadonlyMap<number, SurveyPlace>,
    /** source name → the ledger's number of it, for every source the pass read */
    private readonly numbers: ReadonlyMap<string, number>,
    /** users with several rows given by a transaction id: the size of each one's lookup group (ledger/lookupGroups.ts) */
    readonly lookupGroups: LookupGroupSizes,
    /**
     * rows whose token holds a subscription active when the pass read it (appstore/activeExpiry.ts): when there
     * are any, the ingest orders its rows by expiry from its first row (ingest/tokenExpiry.ts)
     */
    readonly activeRows = 0,
    /** what the sending pass needs of each token read here, so that it does not read it again (tokenFacts.ts) */
    private readonly facts: TokenFactStore = new TokenFactStore(),
  ) {}

  /**
   * What the survey kept of the token of the row at this line of this source, or undefined when the pass did not
   * read it (another source, another token than the one read there).
   */
  factsAt(source: string, line: number, token: string): TokenFacts | undefined {
    const number = this.numbers.get(source);
    if (number === undefined) return undefined;
    const place = { source: number, line };
    return this.facts.factsAt(this.aliases.get(placeKey(place)) ?? place, token);
  }

  /** The decision for the row at this line of this source (a source the pass did not read: send). */
  decisionFor(source: string, line: number): SurveyDecision {
    const number = this.numbers.get(source);
    if (number === undefined) return { kind: 'send' };
    const place = { source: number, line };
    return this.result.decisionFor(this.aliases.get(placeKey(place)) ?? place);
  }

  /** Another user's row holding a purchase of the row at this line of this source (a conflict by purchase), if any. */
  conflictAt(source: string, line: number): { src: string; line: number; appUserId: string; originalTransactionId: string } | undefined {
    const number = this.numbers.get(source);
    if (number === undefined) return undefined;
    const place = { source: number, line };
    const c = this.result.conflictAt(this.aliases.get(placeKey(place)) ?? place);
    return c ? { src: this.sourceName(c.other.place.source), line: c.other.place.line, appUserId: c.other.appUserId, originalTransactionId: c.originalTransactionId } : undefined;
  }

  /** The name of the source with this number. */
  sourceName(number: number): string {
    for (const [name, n] of this.numbers) if (n === number) return name;
    return `source #${number}`;
  }
}

export interface SurveyPassOptions {
  columns: ColumnOptions;
  check: RowCheckOptions;
  /** the ledger's number of a source (ledger.sourceId): the survey's places are the ledger's */
  sourceNumber: (source: string) => Promise<number>;
  rules: AppleRowRules;
  /**
   * the compiled worker that reads the tokens while the pass reads the sources (surveyThread.ts surveyWorkerFile);
   * without it, the pass reads them itself
   */
  worker?: URL;
  /** stops the pass between rows (SIGINT) */
  signal?: AbortSignal;
}

/** Reads every entry once and surveys its App Store rows; undefined when aborted. */
export async function surveyPass(entries: AsyncIterable<SourceEntry>, opts: SurveyPassOptions): Promise<SurveyDecisions | undefined> {
  const keeper = opts.worker ? threadKeeper(opts.worker, { rules: opts.rules, now: opts.check.now() }) : bookKeeper(opts.rules, opts.check.now);
  try {
    return await readSources(entries, opts, keeper);
  } finally {
    await keeper.close();
  }
}

async function readSources(entries: AsyncIterable<SourceEntry>, opts: SurveyPassOptions, keeper: SurveyKeeper): Promise<SurveyDecisions | undefined> {
  const firstOf = new Map<string, SurveyPlace>();
  const aliases = new Map<number, SurveyPlace>();
  const numbers = new Map<string, number>();
  const lookups = new LookupGroupCount();
  for await (const entry of entries) {
    const source = await opts.sourceNumber(entry.name);
    numbers.set(entry.name, source);
    let plan: ColumnPlan | undefined;
    let planned = false;
    for await (const read of entry.open()) {
      if (opts.signal?.aborted) return undefined;
      const item = asRead(read);
      if (item.kind !== 'record') continue;
      if (!planned) {
        planned = true;
        const made = planColumns(item.columns, opts.columns);
        plan = 'error' in made ? undefined : made.plan;
      }
      if (!plan) break;
      const checked = checkRow(item.values, plan, opts.check);
      if (!checked.ok || !isApplePlatform(checked.row.platform)) continue;
      const { platform, body } = checked.row;
      // a row given by a transaction id is read only after its lookup: here it is counted for its user's group
      if (checked.row.lookup) {
        lookups.add(body.app_user_id, recordKey(platform, body.fetch_token));
        continue;
      }
      const place = { source, line: item.line };
      // the ledger's key of the token: what tells a duplicate here, and kept for the sending pass's admission
      const key = tokenFingerprint(platform, body.fetch_token);
      const seen = `${key.toString('latin1')}\u0000${body.app_user_id}`;
      const first = firstOf.get(seen);
      if (first) {
        aliases.set(placeKey(place), first);
        continue;
      }
      firstOf.set(seen, place);
      const wait = keeper.add({ place, appUserId: body.app_user_id, token: body.fetch_token, key });
      if (wait) await wait;
    }
  }
  const { result, facts, activeRows } = await keeper.finish();
  return new SurveyDecisions(result, aliases, numbers, lookups.finish(), activeRows, facts);
}
