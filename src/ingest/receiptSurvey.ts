// The first pass over a run's App Store rows: what RevenueCat will do with each receipt decides what is sent.
//
// RevenueCat identifies an App Store purchase by its original transaction id, not by the receipt's bytes, and
// a newer receipt of an Apple ID lists every auto-renewing transaction and non-consumable of the older ones. So,
// over every Apple row of a run (all its sources, in any order), before anything is sent:
// - superseded: a receipt R of user U is not sent when a NEWER receipt N of U carries every purchase R carries;
//   "newer" is the later date (an app receipt's creation date, a signed transaction's signed date, then the
//   latest expiry, then the later place, so that of two equal receipts exactly one is sent); N carries a purchase
//   of R when N holds R's transaction id, or, for a subscription, a transaction of the same original transaction
//   with an expiry as late or later (a newer renewal). An older receipt that holds a purchase the newer one lacks
//   (a consumable, finished and dropped since) is sent too. The carrier named is the newest carrying receipt,
//   which is never itself superseded (carrying is transitive).
// - conflicts by purchase: among the rows that will be sent, the first one (by place: source, then line) that
//   holds an original transaction id owns it for its user; a row of ANOTHER user holding it is a conflict, named
//   by the shared original transaction id and the owner's row. A superseded row is not a conflict of its own:
//   the receipt that carries it, which is sent, is the one that would move the purchase. Ids are compared within
//   an environment (Apple's sandbox numbers its own), and Xcode's StoreKit testing is left out: its ids are "0".
// - counts for plan.json's `receipts` block.
//
// Memory: a run can hold millions of Apple rows, so the survey keeps numbers, not strings or objects: per row a
// place, a user key, a date and an expiry; per purchase a transaction key, an original transaction key and an
// expiry, in growable typed arrays. Apple transaction ids are decimal numbers below 2^53, kept exactly as numbers
// (no collision, and the id can be written back); any other id is interned as a string. Users are keyed by a
// 53-bit hash of the App User ID (two users colliding could only matter if their receipts also shared purchases).
// Measured with `node bench/scenarios/survey.mjs`.

/** One in-app purchase as a reading gives it. */
export interface SurveyPurchase {
  transactionId: string;
  originalTransactionId: string;
  /** a subscription's expiry (epoch ms); absent for other purchases */
  expiresMs?: number | undefined;
}

/** What the survey needs of a read receipt or signed transaction (src/appstore/readToken.ts gives more). */
export interface SurveyReading {
  environment: string;
  bundleId: string;
  /** app receipt: creation date; signed transaction: signed date (epoch ms) */
  dateMs: number;
  purchases: readonly SurveyPurchase[];
}

/** A row's place in the run's sources: the source's number in the run and the line the row starts on. */
export interface SurveyPlace {
  source: number;
  line: number;
}

export interface SurveyRow {
  place: SurveyPlace;
  appUserId: string;
  /** the reading, or undefined for a token that could not be read (sent as it is, counted unread) */
  reading: SurveyReading | undefined;
  /**
   * Rows with the same token key and user are one row seen twice (the ledger reports the later ones as
   * duplicates): the survey keeps the first only. Any value that tells tokens apart (a token fingerprint).
   */
  tokenKey?: string;
}

export type SurveyDecision = { kind: 'send' } | { kind: 'superseded'; by: SurveyPlace };

export interface PurchaseConflict {
  place: SurveyPlace;
  appUserId: string;
  /** the original transaction id the row shares with the other user's row */
  originalTransactionId: string;
  other: { place: SurveyPlace; appUserId: string };
}

/** plan.json's `receipts` block. */
export interface ReceiptCounts {
  /** rows whose receipt or signed transaction was read */
  read: number;
  /** App Store rows whose token could not be read (sent as they are) */
  unread: number;
  /** read rows of Apple's sandbox or of Xcode's StoreKit testing */
  sandbox: number;
  /** distinct original transaction ids over every read row */
  purchases: number;
  /** rows a newer receipt of the same user carries in full: not sent */
  superseded: number;
  /** read rows per bundle id */
  bundles: Record<string, number>;
}

/** Counted as sandbox in the plan: Apple's sandbox and Xcode's StoreKit testing (neither is a paying customer). */
const SANDBOX_ENVIRONMENTS = new Set(['sandbox', 'xcode']);
/** Places as one number: source × 2^32 + line (sources are few, lines below 2^32). */
const LINE_SPAN = 2 ** 32;

function placeNumber(p: SurveyPlace): number {
  return p.source * LINE_SPAN + p.line;
}

function placeOf(n: number): SurveyPlace {
  return { source: Math.floor(n / LINE_SPAN), line: n % LINE_SPAN };
}

/** cyrb53: a fast 53-bit string hash (public domain, bryc). Not for security: a key for grouping. */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * The number a transaction id written as a canonical decimal below 2^53 is (no sign, no leading zero), or -1 for
 * any other id. One pass over the characters: a receipt's dozen ids per row made a regular expression and
 * Number() a third of the survey's own time.
 */
export function decimalId(id: string): number {
  const n = id.length;
  if (n === 0 || n > 16) return -1;
  if (id.charCodeAt(0) === 0x30) return n === 1 ? 0 : -1;
  let value = 0;
  for (let i = 0; i < n; i++) {
    const d = id.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  // every value above 2^53 - 1 comes out of the sum at 2^53 or more (rounding is monotonic)
  return value <= Number.MAX_SAFE_INTEGER ? value : -1;
}

/** A Float64Array that grows (rows and purchases are counted as they come). */
export class Grow {
  data = new Float64Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(Math.max(1024, this.data.length * 2));
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  at(i: number): number {
    return this.data[i] as number;
  }
  /** Gives back the room grown ahead (up to half the array) once no more values come. */
  trim(): void {
    if (this.data.length > this.length) this.data = this.data.slice(0, this.length);
  }
}

/**
 * Transaction ids as numbers: a canonical decimal below 2^53 is its own key (>= 0); any other id is interned and
 * keyed by -(1 + its index), so keys are exact and can be turned back into the id. The survey's keys, and the
 * token facts' (tokenFacts.ts).
 */
export class IdKeys {
  private readonly others = new Map<string, number>();
  private readonly names: string[] = [];

  /** Keys that give `production` ids the same keys as the keys these names were interned by (a worker's copy). */
  static ofProduction(names: readonly string[]): IdKeys {
    const keys = new IdKeys();
    for (const name of names) keys.intern(name, name);
    return keys;
  }

  /** The interned ids, by -(key + 1). */
  get interned(): readonly string[] {
    return this.names;
  }

  /** The key of a transaction id within an environment: Apple's sandbox and Xcode number their own. */
  key(id: string, environment: string): number {
    if (environment !== 'production') return this.intern(`${environment}\u0000${id}`, id);
    const n = decimalId(id);
    return n >= 0 ? n : this.intern(id, id);
  }
  private intern(key: string, id: string): number {
    let k = this.others.get(key);
    if (k === undefined) {
      k = -(1 + this.names.length);
      this.names.push(id);
      this.others.set(key, k);
    }
    return k;
  }
  text(key: number): string {
    return key >= 0 ? String(key) : (this.names[-key - 1] as string);
  }
}

export class ReceiptSurvey {
  private readonly ids = new IdKeys();
  // per read row
  private readonly places = new Grow();
  /** 1 for a row of Xcode's StoreKit testing, whose ids ("0") mean nothing across users */
  private readonly local = new Grow();
  private readonly users = new Grow();
  private readonly dates = new Grow();
  /** the row's latest purchase expiry (ties of dates) */
  private readonly expiries = new Grow();
  /** index of the row's first purchase; its last is the next row's first */
  private readonly firstPurchase = new Grow();
  // per purchase
  private readonly txns = new Grow();
  private readonly origs = new Grow();
  private readonly purchaseExpiries = new Grow();
  /** App User IDs by user key, for conflicts (a user's id is kept once, whatever its row count) */
  private readonly userIds = new Map<number, string>();
  private readonly seenTokens = new Set<string>();
  private readonly bundles = new Map<string, number>();
  private unread = 0;
  private sandbox = 0;
  private finished?: SurveyResult;

  /** Adds one App Store row (in any order). */
  add(row: SurveyRow): void {
    if (this.finished) throw new Error('ReceiptSurvey.add after finish');
    if (row.tokenKey !== undefined) {
      const seen = `${row.tokenKey}\u0000${row.appUserId}`;
      if (this.seenTokens.has(seen)) return;
      this.seenTokens.add(seen);
    }
    const reading = row.reading;
    if (!reading) {
      this.unread++;
      return;
    }
    const user = hash53(row.appUserId);
    if (!this.userIds.has(user)) this.userIds.set(user, row.appUserId);
    this.bundles.set(reading.bundleId, (this.bundles.get(reading.bundleId) ?? 0) + 1);
    if (SANDBOX_ENVIRONMENTS.has(reading.environment)) this.sandbox++;
    this.places.push(placeNumber(row.place));
    this.local.push(reading.environment === 'xcode' ? 1 : 0);
    this.users.push(user);
    this.dates.push(Number.isFinite(reading.dateMs) ? reading.dateMs : 0);
    this.firstPurchase.push(this.txns.length);
    let latest = 0;
    for (const p of reading.purchases) {
      this.txns.push(this.ids.key(p.transactionId, reading.environment));
      this.origs.push(this.ids.key(p.originalTransactionId, reading.environment));
      const expires = p.expiresMs ?? Number.NaN;
      this.purchaseExpiries.push(expires);
      if (expires > latest) latest = expires; // NaN (no expiry) never is
    }
    this.expiries.push(latest);
  }

  /** Decides every row added; the survey takes no more rows after this. */
  finish(): SurveyResult {
    if (this.finished) return this.finished;
    const n = this.places.length;
    const end = (row: number): number => (row + 1 < n ? this.firstPurchase.at(row + 1) : this.txns.length);
    // Rows by user, newest first within a user.
    const order = Array.from({ length: n }, (_, i) => i);
    const newer = (a: number, b: number): number => this.dates.at(b) - this.dates.at(a) || this.expiries.at(b) - this.expiries.at(a) || this.places.at(b) - this.places.at(a);
    order.sort((a, b) => this.users.at(a) - this.users.at(b) || newer(a, b));

    const supersededBy = new Map<number, number>();
    for (let start = 0; start < n;) {
      let stop = start + 1;
      while (stop < n && this.users.at(order[stop] as number) === this.users.at(order[start] as number)) stop++;
      // Within a user, newest first: a row is superseded by the first (newest) earlier row that carries it.
      for (let i = start + 1; i < stop; i++) {
        const r = order[i] as number;
        for (let j = start; j < i; j++) {
          const c = order[j] as number;
          if (this.carries(c, end(c), r, end(r))) {
            supersededBy.set(r, c);
            break;
          }
        }
      }
      start = stop;
    }

    // Conflicts among the rows sent, in place order.
    const byPlace = Array.from({ length: n }, (_, i) => i).sort((a, b) => this.places.at(a) - this.places.at(b));
    const owners = new Map<number, number>();
    const conflicts: PurchaseConflict[] = [];
    const conflicted = new Set<number>();
    for (const r of byPlace) {
      if (supersededBy.has(r) || this.local.at(r) === 1) continue;
      const user = this.users.at(r);
      for (let p = this.firstPurchase.at(r); p < end(r); p++) {
        const orig = this.origs.at(p);
        const owner = owners.get(orig);
        if (owner === undefined) owners.set(orig, r);
        else if (this.users.at(owner) !== user && !conflicted.has(r)) {
          conflicted.add(r);
          conflicts.push({
            place: placeOf(this.places.at(r)),
            appUserId: this.userIds.get(user) as string,
            originalTransactionId: this.ids.text(orig),
            other: { place: placeOf(this.places.at(owner)), appUserId: this.userIds.get(this.users.at(owner)) as string },
          });
        }
      }
    }

    const distinct = new Set<number>();
    for (let p = 0; p < this.origs.length; p++) distinct.add(this.origs.at(p));
    const decisions = new Map<number, number>();
    for (const [r, c] of supersededBy) decisions.set(this.places.at(r), this.places.at(c));
    this.finished = new SurveyResult(decisions, conflicts, {
      read: n,
      unread: this.unread,
      sandbox: this.sandbox,
      purchases: distinct.size,
      superseded: supersededBy.size,
      bundles: Object.fromEntries([...this.bundles].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    });
    return this.finished;
  }

  /** Whether row c (purchases [c0, c1)) carries every purchase of row r (purchases [r0, r1)). */
  private carries(c: number, c1: number, r: number, r1: number): boolean {
    const c0 = this.firstPurchase.at(c);
    for (let p = this.firstPurchase.at(r); p < r1; p++) {
      const txn = this.txns.at(p);
      const orig = this.origs.at(p);
      const expires = this.purchaseExpiries.at(p);
      let found = false;
      for (let q = c0; q < c1 && !found; q++) {
        if (this.txns.at(q) === txn) found = true;
        // a subscription: a renewal of the same original transaction that lasts as long or longer
        else if (!Number.isNaN(expires) && this.origs.at(q) === orig && this.purchaseExpiries.at(q) >= expires) found = true;
      }
      if (!found) return false;
    }
    return true;
  }
}

/** A SurveyResult as plain values (a worker hands it over by structured clone). */
export interface SurveyResultState {
  superseded: ReadonlyMap<number, number>;
  conflicts: readonly PurchaseConflict[];
  counts: ReceiptCounts;
}

/** What the survey decided: per row, send or superseded (by which row); the conflicts; the counts. */
export class SurveyResult {
  constructor(
    private readonly superseded: ReadonlyMap<number, number>,
    readonly conflicts: readonly PurchaseConflict[],
    readonly counts: ReceiptCounts,
  ) {}

  state(): SurveyResultState {
    return { superseded: this.superseded, conflicts: this.conflicts, counts: this.counts };
  }

  static fromState(state: SurveyResultState): SurveyResult {
    return new SurveyResult(state.superseded, state.conflicts, state.counts);
  }

  /** What to do with the App Store row at this place (any row the survey did not see is sent). */
  decisionFor(place: SurveyPlace): SurveyDecision {
    const by = this.superseded.get(placeNumber(place));
    return by === undefined ? { kind: 'send' } : { kind: 'superseded', by: placeOf(by) };
  }

  /** The conflict by purchase of the row at this place, if it has one. */
  conflictAt(place: SurveyPlace): PurchaseConflict | undefined {
    const n = placeNumber(place);
    this.conflictIndex ??= new Map(this.conflicts.map((c) => [placeNumber(c.place), c]));
    return this.conflictIndex.get(n);
  }

  private conflictIndex?: Map<number, PurchaseConflict>;
}
