// The survey's count of each user's rows given by a transaction id (issue 17: one purchase, one POST): a user with
// two or more gets a lookup group (ledger/lookupGroups.ts), whose size is this count, so that each of its rows can
// tell, after its lookup, when every other row of the user has been looked up too. The count must be exactly the
// rows the sending pass will queue or mark absent: rows the ledger will call duplicates of one another (the same
// token for the same user) count once, as they are one row to the ledger.
//
// Memory: two numbers per row (a 53-bit hash of the user and of the row's record key) in growable typed arrays,
// sorted once at the end; then two numbers per grouped user. Two users whose hashes collide share a group (its
// size is the sum of theirs, and both store their rows in it, so it still completes; each row compares itself
// only with its own user's rows).
import { Grow, hash53 } from './receiptSurvey.js';

export class LookupGroupCount {
  private readonly users = new Grow();
  private readonly tokens = new Grow();
  private sizes?: LookupGroupSizes;

  /** One row given by a transaction id: its user and its record key (recordKey: platform and token). */
  add(appUserId: string, recordKey: string): void {
    if (this.sizes) throw new Error('LookupGroupCount.add after finish');
    this.users.push(hash53(appUserId));
    this.tokens.push(hash53(recordKey));
  }

  finish(): LookupGroupSizes {
    if (this.sizes) return this.sizes;
    const n = this.users.length;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => this.users.at(a) - this.users.at(b) || this.tokens.at(a) - this.tokens.at(b));
    const groupUsers: number[] = [];
    const groupSizes: number[] = [];
    for (let start = 0; start < n;) {
      const user = this.users.at(order[start] as number);
      let distinct = 0;
      let last = Number.NaN;
      let stop = start;
      for (; stop < n && this.users.at(order[stop] as number) === user; stop++) {
        const token = this.tokens.at(order[stop] as number);
        if (token !== last) distinct++;
        last = token;
      }
      if (distinct >= 2) {
        groupUsers.push(user);
        groupSizes.push(distinct);
      }
      start = stop;
    }
    this.sizes = new LookupGroupSizes(Float64Array.from(groupUsers), Uint32Array.from(groupSizes));
    return this.sizes;
  }
}

/** The size of each user's lookup group: users with two rows or more given by a transaction id. */
export class LookupGroupSizes {
  constructor(
    /** user hashes, ascending */
    private readonly users: Float64Array,
    private readonly sizes: Uint32Array,
  ) {}

  /** How many users have a group. */
  get groups(): number {
    return this.users.length;
  }

  /** The size of the user's group, or undefined when the user has fewer than two such rows. */
  sizeOf(appUserId: string): number | undefined {
    const key = hash53(appUserId);
    let lo = 0;
    let hi = this.users.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.users[mid] as number;
      if (v === key) return this.sizes[mid];
      if (v < key) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }
}
