// Excel's separator hint: a first line `sep=;` (or `sep=|`, `sep=<tab>` …) says which character separates the
// columns. Excel writes it in locales whose list separator is not a comma, and reads it back; other tools pass it on.
//
// The hint sits between the LineNormalizer (UTF-8 with LF line endings, byte order mark gone) and the RecordGuard:
// it holds the first bytes until the first line is complete, decides, and from then on passes bytes through
// untouched. A hint line is dropped (the reader starts counting at line 2, so line numbers stay the file's own);
// anything else is passed on whole and the separator stays a comma.
//
// Rules:
// - Only line 1 can be a hint, written `sep=X` or `"sep=X"` (any case), optionally followed by more X (a spreadsheet
//   that saved the hint as a cell pads it to the table's width: `"sep=;";;;`) and by spaces or tabs.
// - X must be one ASCII character that can separate fields: not a letter or digit, not `"` (the quote), not a space.
// - A first line that starts like a hint but names an unusable separator (`sep=`, `sep=ab`, `sep="`) is a problem of
//   the file, reported at line 1; the rest of the file is then accounted for row by row (as after a bad header).
// - A first line longer than MAX_HINT_BYTES is not a hint (the header of a real file is passed on without delay).

const LF = 0x0a;
const MAX_HINT_BYTES = 64;
const HINT = /^"?sep=/i;
/** One ASCII punctuation character other than the quote, or a tab; repeated after the hint when a spreadsheet padded it to the width of the table. */
const USABLE_HINT = /^"?sep=([\t!#-/:-@[-`{-~])"?\1*[ \t]*$/i;

export class SeparatorHint {
  /** The column separator (one ASCII character); a comma unless the file's first line said otherwise. */
  delimiter = ',';
  /** Lines of the input consumed by the hint (0 or 1): the reader's line numbers start after them. */
  lines = 0;
  /** Set when line 1 looks like a hint that cannot be honoured: the reason, and the line's text. */
  problem?: { reason: string; raw: string };
  private done = false;
  private held: Buffer[] = [];

  /** Whether line 1 has been seen (or the input ended): `delimiter`, `lines` and `problem` are final. */
  get decided(): boolean {
    return this.done;
  }

  push(chunk: Buffer): Buffer {
    if (this.done) return chunk;
    this.held.push(chunk);
    const data = this.held.length === 1 ? chunk : Buffer.concat(this.held);
    const lf = data.indexOf(LF);
    if (lf === -1 && data.length < MAX_HINT_BYTES) return Buffer.alloc(0);
    return this.decide(data, lf);
  }

  /** The held bytes at the end of the input (a file of one short line). */
  finish(): Buffer {
    if (this.done) return Buffer.alloc(0);
    const data = Buffer.concat(this.held);
    return this.decide(data, data.indexOf(LF));
  }

  private decide(data: Buffer, lf: number): Buffer {
    this.done = true;
    this.held = [];
    const end = lf === -1 ? data.length : lf;
    if (end > MAX_HINT_BYTES) return data;
    const line = data.subarray(0, end).toString('utf8');
    if (!HINT.test(line)) return data;
    this.lines = 1;
    const usable = USABLE_HINT.exec(line);
    const sep = usable?.[1];
    if (sep !== undefined) {
      this.delimiter = sep;
    } else {
      this.problem = {
        reason: `the first line "${line.trim()}" is a separator hint that cannot be used: write it as sep= followed by one character such as ; | or a tab (not a letter, digit, space or quote), or delete the line`,
        raw: line,
      };
    }
    return data.subarray(lf === -1 ? data.length : lf + 1);
  }
}
