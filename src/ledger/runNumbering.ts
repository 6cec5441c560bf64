// The numbers a run's compact records store instead of names: sources, repeated strings (the dictionary: product
// and entitlement ids, failure reasons and messages), the run's own number in the cross-run index, and the run's
// start (times count from it). Each is looked up once per process and cached, since it never changes; concurrent
// first uses share one lookup, and a failed one is tried again next time.
//
// Failure reasons and messages go through the dictionary too, so that a failed row's record is as small as a
// succeeded one's; but a message may be unique to its row (it names the row's receipt, say), and a dictionary
// growing by one entry a row would cost what it saves. So the dictionary takes such strings only while it has
// fewer than TEXT_CODES_CAP entries and they are at most TEXT_CODE_MAX_BYTES long: past that a record keeps its
// text inline.
import { locationOf, META } from '../redis/keys.js';
import type { RunContext } from './runContext.js';
import { decodePlace, type DecodeContext } from './rowRecord.js';
import { dictionaryCodes, runNumber, sourceNumber } from './scriptCalls.js';

/** Dictionary entries past which a new failure text is kept inline in its record. */
export const TEXT_CODES_CAP = 1024;
/** A longer failure text is always kept inline (it would not repeat much, and would weigh on every decode). */
export const TEXT_CODE_MAX_BYTES = 256;

export class RunNumbering {
  private readonly sourceIds = new Map<string, Promise<number>>();
  private readonly codes = new Map<string, number | undefined>();
  private readonly pendingCodes = new Map<string, Promise<void>>();
  /** the dictionary answered "full" once: new failure texts go inline without asking */
  private dictionaryFull = false;
  private startMs?: Promise<number>;
  private number?: Promise<number>;

  constructor(private readonly run: RunContext) {}

  /** The number that stands for a source in this run's records. */
  async sourceId(source: string): Promise<number> {
    let id = this.sourceIds.get(source);
    if (id === undefined) {
      id = sourceNumber(this.run.redis, { run: this.run.keys, source });
      this.sourceIds.set(source, id);
      id.catch(() => this.sourceIds.delete(source));
    }
    return id;
  }

  /** Source names by number. */
  async sources(): Promise<string[]> {
    const all = await this.run.redis.hgetall(this.run.keys.sources);
    const names: string[] = [];
    for (const [name, id] of Object.entries(all)) names[Number(id)] = name;
    return names;
  }

  /** This run's number in the cross-run index. */
  async runNumber(): Promise<number> {
    if (!this.number) {
      this.number = runNumber(this.run.redis, { runNumbers: this.run.names.runNumbers, runId: this.run.runId });
      this.number.catch(() => (this.number = undefined));
    }
    return this.number;
  }

  /** When the run began (epoch ms): records count their times from it. */
  async start(): Promise<number> {
    if (!this.startMs) {
      this.startMs = (async () => {
        const { redis, keys } = this.run;
        await redis.hsetnx(keys.meta, META.startedAt, new Date().toISOString());
        return Date.parse((await redis.hget(keys.meta, META.startedAt)) as string);
      })();
      this.startMs.catch(() => (this.startMs = undefined));
    }
    return this.startMs;
  }

  /** Has the dictionary codes of these strings ready for `code` (every one gets a code). */
  async ensureCodes(strings: readonly string[]): Promise<void> {
    await this.lookUp(strings, 0);
  }

  /** Has the codes of these failure texts ready for `textCode`, as far as the dictionary takes them. */
  async ensureTextCodes(texts: readonly string[]): Promise<void> {
    const worth = texts.filter((t) => Buffer.byteLength(t, 'utf8') <= TEXT_CODE_MAX_BYTES);
    if (this.dictionaryFull) return;
    await this.lookUp(worth, TEXT_CODES_CAP);
  }

  private async lookUp(strings: readonly string[], cap: number): Promise<void> {
    const missing = [...new Set(strings)].filter((s) => !this.codes.has(s) && !this.pendingCodes.has(s));
    if (missing.length > 0) {
      const lookup = dictionaryCodes(this.run.redis, { dict: this.run.keys.dict, strings: missing, cap }).then((codes) =>
        missing.forEach((s, i) => {
          const code = codes[i];
          // a text the full dictionary did not take is not cached: another process may have numbered it
          if (code === undefined) this.dictionaryFull = true;
          else this.codes.set(s, code);
        }),
      );
      for (const s of missing) this.pendingCodes.set(s, lookup);
      const done = (): void => missing.forEach((s) => this.pendingCodes.delete(s));
      lookup.then(done, done);
    }
    await Promise.all(strings.map((s) => this.pendingCodes.get(s) ?? Promise.resolve()));
  }

  /** The code of a string ensureCodes had ready. */
  code = (text: string): number => {
    const code = this.codes.get(text);
    if (code === undefined) throw new Error(`no dictionary code for ${text}`);
    return code;
  };

  /** The code of a failure text, if the dictionary took it. */
  textCode = (text: string): number | undefined => this.codes.get(text);

  /** What decoding this run's records needs: source names, start and dictionary (read once per pass). */
  async decodeContext(): Promise<DecodeContext> {
    const { redis, keys } = this.run;
    const [sources, dict, started] = await Promise.all([this.sources(), redis.hgetall(keys.dict), redis.hget(keys.meta, META.startedAt)]);
    const names: string[] = [];
    for (const [text, code] of Object.entries(dict)) names[Number(code)] = text;
    return { sources, base: started ? Date.parse(started) : 0, name: (code) => names[code] ?? `(dictionary entry ${code})` };
  }

  /** A stored place (source number and line) as `<source>#<line>`. */
  async placeName(place: Buffer, sources?: readonly string[]): Promise<string> {
    const { sourceNumber: n, line } = decodePlace(place);
    const names = sources ?? (await this.sources());
    return locationOf(names[n] ?? `source #${n}`, line);
  }
}
