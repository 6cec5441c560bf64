// What the sending pass needs of an App Store token, kept by the survey pass that already read it, so each token is
// decoded once per ingest. Reading a receipt (base64, BER, every in-app attribute) was the largest cost of `plan`
// with reading on, and the sending pass read every token a second time for three things: whether the run's rules
// reject it (appleRowProblem), the soonest expiry among its active subscriptions (the queue order) and the
// original transaction ids the purchase index is asked about (purchaseIdsOf). Those are kept here, per row, keyed
// by its place, and nothing else of the reading.
//
// Memory: a run can hold millions of App Store rows, so the facts are numbers in growable typed arrays, not
// objects: per row its place (8 B), a check of its token (4 B), a code (4 B: unread, rejected, or its environment),
// where its purchases start (4 B) and the token's fingerprint, when the survey gives it (10 B); per distinct original transaction id of a row, the id (8 B; a canonical
// decimal below 2^53 is its own number, any other is interned) and the latest expiry of its transactions that
// were not revoked (8 B, NaN for none). Rejection reasons are few (a bundle id, an environment): interned.
// Measured with `node bench/scenarios/tokenFacts.mjs` (bench/README.md).
//
// The check (32 bits of a hash of part of the row's token) guards against a source that changed between the two
// passes: a row whose token is not the one the survey read has no facts here, and the sending pass reads it (and
// hashes it) again. The survey's decisions themselves are by place alone, so the check is what ties a place to
// the token read there; the fingerprint kept is that token's.
import { soonestActiveExpiry, soonestAfter, subscriptionEnds } from '../appstore/activeExpiry.js';
import { purchaseIdsOf, type PurchaseIdentity } from '../appstore/purchaseIds.js';
import type { AppleEnvironment, AppleReading } from '../appstore/readToken.js';
import { Grow, IdKeys, type SurveyPlace } from './receiptSurvey.js';
import { TOKEN_FINGERPRINT_BYTES } from '../ledger/rowIdentity.js';

const NO_KEY = new Uint8Array(TOKEN_FINGERPRINT_BYTES);

/** What the sending pass asks of an App Store row's token. */
export interface TokenFacts {
  /** why the run's rules reject the row (--bundle-id, --skip-sandbox), or undefined */
  problem: string | undefined;
  /** the purchases the purchase index is asked about (appstore/purchaseIds.ts purchaseIdsOf) */
  purchases: PurchaseIdentity[];
  /** the soonest expiry among the token's subscriptions active at `now` (appstore/activeExpiry.ts), if any */
  soonestActive(now: number): number | undefined;
  /**
   * the token's fingerprint (ledger/rowIdentity.ts tokenFingerprint), when the survey computed it: hashing a
   * receipt of several KB again in the sending pass was a fifth of what reading cost an ingest
   */
  key?: Buffer;
  /** the token holds only characters JSON writes as they are (appstore/readToken.ts plainToken) */
  plainToken: boolean;
}

const ENVIRONMENTS: readonly AppleEnvironment[] = ['production', 'sandbox', 'xcode'];
const UNREAD = -1;
/** added to a read token's code (an index in ENVIRONMENTS) when the token is plain (TokenFacts.plainToken) */
const PLAIN = 0x100;
const LINE_SPAN = 2 ** 32;

/** The facts of a reading just made: what a row the survey kept nothing of gets (`TokenFactStore` keeps the same). */
export function factsOf(reading: AppleReading, problem: string | undefined): TokenFacts {
  return { problem, purchases: purchaseIdsOf(reading), soonestActive: (now) => soonestActiveExpiry(reading, now), plainToken: reading.kind !== 'unread' && reading.plainToken };
}

/** Bytes in fixed-width records, growing. */
class GrowBytes {
  data: Uint8Array;
  length = 0;
  constructor(private readonly width: number) {
    this.data = new Uint8Array(1024 * width);
  }
  push(bytes: Uint8Array): void {
    if ((this.length + 1) * this.width > this.data.length) {
      const next = new Uint8Array(Math.max(1024 * this.width, this.data.length * 2));
      next.set(this.data);
      this.data = next;
    }
    this.data.set(bytes.subarray(0, this.width), this.length * this.width);
    this.length++;
  }
  /** A copy of record i. */
  at(i: number): Buffer {
    return Buffer.from(this.data.subarray(i * this.width, (i + 1) * this.width));
  }
  trim(): void {
    if (this.data.length > this.length * this.width) this.data = this.data.slice(0, this.length * this.width);
  }
}

/** A Uint32Array / Int32Array that grows. */
class Grow32<A extends Int32Array | Uint32Array> {
  length = 0;
  constructor(
    public data: A,
    private readonly make: (size: number) => A,
  ) {}
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = this.make(Math.max(1024, this.data.length * 2));
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  trim(): void {
    if (this.data.length > this.length) this.data = this.data.slice(0, this.length) as A;
  }
}

const int32 = (): Grow32<Int32Array> => new Grow32(new Int32Array(1024), (n) => new Int32Array(n));
const uint32 = (): Grow32<Uint32Array> => new Grow32(new Uint32Array(1024), (n) => new Uint32Array(n));

/**
 * 32 bits that tell the token the survey read from another one at the same place: a hash of its length and of 64
 * characters from its middle and its end (a receipt's start is the same PKCS#7 header in every receipt, its end
 * is signature). Not a fingerprint: hashing all of a 12 KB token again was the cost this store spares.
 */
export function tokenCheck(token: string): number {
  // cyrb53's mixing (receiptSurvey.ts hash53) over the characters in place: no slice, no joined string
  const n = token.length;
  let h1 = 0xdeadbeef ^ n;
  let h2 = 0x41c6ce57 ^ n;
  const mid = n >>> 1;
  const stops = [mid, Math.min(n, mid + 64), Math.max(0, n - 64), n];
  for (let part = 0; part < 4; part += 2) {
    for (let i = stops[part] as number; i < (stops[part + 1] as number); i++) {
      const ch = token.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 2654435761);
      h2 = Math.imul(h2 ^ ch, 1597334677);
    }
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h1 ^ h2) | 0;
}

/** A TokenFactStore as plain values, trimmed (a worker hands it over: the typed arrays moved, the rest cloned). */
export interface TokenFactState {
  places: Float64Array;
  checks: Int32Array;
  codes: Int32Array;
  firstId: Uint32Array;
  ids: Float64Array;
  until: Float64Array;
  keys: Uint8Array;
  keyless: boolean;
  problems: string[];
  otherIds: string[];
  sorted: boolean;
}

/** The facts of every App Store token the survey pass read, by the row's place. */
export class TokenFactStore {
  private readonly places = new Grow();
  private readonly checks = int32();
  /** UNREAD, an index in ENVIRONMENTS (read and accepted; + PLAIN for a plain token), or -(2 + an index in `problems`) (rejected) */
  private readonly codes = int32();
  /** index of the row's first original transaction id; its last is the next row's first */
  private readonly firstId = uint32();
  private readonly ids = new Grow();
  private readonly until = new Grow();
  /** per row, the token's fingerprint (zeros when not given) */
  private readonly keys = new GrowBytes(TOKEN_FINGERPRINT_BYTES);
  /** a row was added without its fingerprint: none is given back (the survey pass gives every row's) */
  private keyless = false;
  private readonly problems: string[] = [];
  private readonly problemIndex = new Map<string, number>();
  /** the ids of every environment keyed alike: each row's environment is kept beside them */
  private idKeys = new IdKeys();
  /** row indices in place order, when the rows did not come in place order */
  private order?: Uint32Array;
  private sorted = true;

  get size(): number {
    return this.places.length;
  }

  /**
   * Keeps what the sending pass needs of the reading of the token at `place` (`problem`: appleRowProblem's; `key`:
   * the token's fingerprint, tokenFingerprint(platform, token); `ends`: subscriptionEnds(reading), when the caller
   * has it).
   */
  add(place: SurveyPlace, token: string, reading: AppleReading, problem: string | undefined, key?: Uint8Array, ends?: readonly number[]): void {
    const n = place.source * LINE_SPAN + place.line;
    if (this.places.length > 0 && n <= this.places.at(this.places.length - 1)) this.sorted = false;
    this.order = undefined;
    this.places.push(n);
    this.checks.push(tokenCheck(token));
    if (key === undefined) this.keyless = true;
    this.keys.push(key ?? NO_KEY);
    this.firstId.push(this.ids.length);
    if (problem !== undefined) {
      let p = this.problemIndex.get(problem);
      if (p === undefined) {
        p = this.problems.length;
        this.problems.push(problem);
        this.problemIndex.set(problem, p);
      }
      this.codes.push(-(2 + p));
      return;
    }
    if (reading.kind === 'unread') {
      this.codes.push(UNREAD);
      return;
    }
    this.codes.push(ENVIRONMENTS.indexOf(reading.environment) + (reading.plainToken ? PLAIN : 0));
    const until = ends ?? subscriptionEnds(reading);
    for (const [i, id] of reading.originalTransactionIds.entries()) {
      this.ids.push(this.idKeys.key(id, 'production'));
      this.until.push(until[i] as number);
    }
  }

  /** The store as plain values (trimmed first). */
  state(): TokenFactState {
    this.trim();
    return {
      places: this.places.data,
      checks: this.checks.data,
      codes: this.codes.data,
      firstId: this.firstId.data,
      ids: this.ids.data,
      until: this.until.data,
      keys: this.keys.data,
      keyless: this.keyless,
      problems: this.problems,
      otherIds: [...this.idKeys.interned],
      sorted: this.sorted,
    };
  }

  static fromState(state: TokenFactState): TokenFactStore {
    const store = new TokenFactStore();
    const fill = <A extends { length: number }>(grow: { data: A; length: number }, data: A, count = data.length): void => {
      grow.data = data;
      grow.length = count;
    };
    fill(store.places, state.places);
    fill(store.checks, state.checks);
    fill(store.codes, state.codes);
    fill(store.firstId, state.firstId);
    fill(store.ids, state.ids);
    fill(store.until, state.until);
    fill(store.keys, state.keys, state.places.length);
    store.keyless = state.keyless;
    store.sorted = state.sorted;
    for (const problem of state.problems) store.problemIndex.set(problem, store.problems.push(problem) - 1);
    store.idKeys = IdKeys.ofProduction(state.otherIds);
    return store;
  }

  /** Gives back the room the arrays grew ahead, once every row is added (a million rows: 55 B a row → 37). */
  trim(): void {
    for (const grow of [this.places, this.checks, this.codes, this.firstId, this.ids, this.until, this.keys]) grow.trim();
  }

  /** The facts kept for the token at `place`, or undefined when none are kept or the token is another one. */
  factsAt(place: SurveyPlace, token: string): TokenFacts | undefined {
    const row = this.find(place.source * LINE_SPAN + place.line);
    if (row === undefined || this.checks.data[row] !== tokenCheck(token)) return undefined;
    const code = this.codes.data[row] as number;
    const key = this.keyless ? {} : { key: this.keys.at(row) };
    if (code === UNREAD) return { problem: undefined, purchases: [], soonestActive: () => undefined, ...key, plainToken: false };
    if (code < UNREAD) return { problem: this.problems[-code - 2], purchases: [], soonestActive: () => undefined, ...key, plainToken: false };
    const environment = ENVIRONMENTS[code % PLAIN] as AppleEnvironment;
    const from = this.firstId.data[row] as number;
    const to = row + 1 < this.places.length ? (this.firstId.data[row + 1] as number) : this.ids.length;
    const until: number[] = [];
    const purchases: PurchaseIdentity[] = [];
    for (let i = from; i < to; i++) {
      until.push(this.until.at(i));
      if (environment !== 'xcode') purchases.push({ environment, originalTransactionId: this.idKeys.text(this.ids.at(i)) });
    }
    return { problem: undefined, purchases, soonestActive: (now) => soonestAfter(until, now), ...key, plainToken: code >= PLAIN };
  }

  /** Bytes held by the arrays (their capacity) and the interned strings, roughly: for the memory figure. */
  bytes(): number {
    const strings = [...this.problems, ...this.idKeys.interned].reduce((sum, s) => sum + 2 * s.length + 48, 0);
    return (
      this.places.data.byteLength +
      this.checks.data.byteLength +
      this.codes.data.byteLength +
      this.firstId.data.byteLength +
      this.ids.data.byteLength +
      this.until.data.byteLength +
      this.keys.data.byteLength +
      (this.order?.byteLength ?? 0) +
      strings
    );
  }

  /** Binary search over the places (in place order: rows come in file order, sorted once otherwise). */
  private find(n: number): number | undefined {
    const count = this.places.length;
    const places = this.places.data;
    let order: Uint32Array | undefined;
    if (!this.sorted) {
      this.order ??= Uint32Array.from({ length: count }, (_, i) => i).sort((a, b) => (places[a] as number) - (places[b] as number));
      order = this.order;
    }
    let lo = 0;
    let hi = count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const row = order ? (order[mid] as number) : mid;
      const at = places[row] as number;
      if (at === n) return row;
      if (at < n) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }
}
