// What the survey pass keeps of each App Store row it reads, apart from reading the sources: the token read
// (appstore/readToken.ts), the run's rules applied to it, what the sending pass will need of it (tokenFacts.ts)
// and the row in the ReceiptSurvey. The same work whichever thread does it: the survey pass's own
// (surveyPass.ts), or a worker of it (surveyThread.ts), which hands back what it kept once the pass ends.
import { soonestAfter, subscriptionEnds } from '../appstore/activeExpiry.js';
import type { AppleReading } from '../appstore/readToken.js';
import { AppleTokenReader } from '../appstore/readToken.js';
import { ReceiptSurvey, SurveyResult, type SurveyPlace, type SurveyResultState } from './receiptSurvey.js';
import { TokenFactStore, type TokenFactState } from './tokenFacts.js';

/** What an ingest accepts of App Store rows (--bundle-id, --skip-sandbox). */
export interface AppleRowRules {
  /** the run's apps: a read receipt of another app is rejected (absent or empty: any app) */
  bundleIds?: readonly string[];
  /** reject receipts of Apple's sandbox and of Xcode's StoreKit testing */
  skipSandbox?: boolean;
}

/** Why an App Store row is rejected at ingest, or undefined (an unread token is sent as it is). */
export function appleRowProblem(reading: AppleReading, rules: AppleRowRules): string | undefined {
  if (reading.kind === 'unread') return undefined;
  const ids = rules.bundleIds ?? [];
  if (ids.length > 0 && !ids.includes(reading.bundleId)) return `receipt of app ${reading.bundleId}, not of ${ids.join(', ')} (--bundle-id)`;
  if (rules.skipSandbox === true && reading.environment !== 'production') return `${reading.environment} receipt, not sent with --skip-sandbox`;
  return undefined;
}

/** One App Store row for the book: a valid row with a token, the first of its token and user. */
export interface SurveyEntry {
  place: SurveyPlace;
  appUserId: string;
  token: string;
  /** the token's fingerprint (ledger/rowIdentity.ts tokenFingerprint), kept for the sending pass */
  key: Uint8Array;
}

/** What the book kept, once every row is in. */
export interface SurveyKept {
  result: SurveyResult;
  facts: TokenFactStore;
  /** rows whose token holds a subscription active when the pass read it */
  activeRows: number;
}

/** SurveyKept as a worker hands it over (structured clone: arrays and plain values, no classes). */
export interface SurveyKeptState {
  result: SurveyResultState;
  facts: TokenFactState;
  activeRows: number;
}

export function keptState(kept: SurveyKept): SurveyKeptState {
  return { result: kept.result.state(), facts: kept.facts.state(), activeRows: kept.activeRows };
}

export function keptFromState(state: SurveyKeptState): SurveyKept {
  return { result: SurveyResult.fromState(state.result), facts: TokenFactStore.fromState(state.facts), activeRows: state.activeRows };
}

export class SurveyBook {
  private readonly survey = new ReceiptSurvey();
  private readonly facts = new TokenFactStore();
  private readonly reader = new AppleTokenReader();
  private activeRows = 0;

  constructor(
    private readonly rules: AppleRowRules,
    /** the clock that tells an active subscription */
    private readonly now: () => number,
  ) {}

  add(entry: SurveyEntry): void {
    const reading = this.reader.read(entry.token);
    const problem = appleRowProblem(reading, this.rules);
    const ends = reading.kind === 'unread' || problem !== undefined ? undefined : subscriptionEnds(reading);
    this.facts.add(entry.place, entry.token, reading, problem, entry.key, ends);
    // a row the ingest rejects is neither sent nor a carrier of another's purchases
    if (problem !== undefined) return;
    this.survey.add({ place: entry.place, appUserId: entry.appUserId, reading: reading.kind === 'unread' ? undefined : reading });
    if (ends !== undefined && soonestAfter(ends, this.now()) !== undefined) this.activeRows++;
  }

  finish(): SurveyKept {
    this.facts.trim();
    return { result: this.survey.finish(), facts: this.facts, activeRows: this.activeRows };
  }
}
