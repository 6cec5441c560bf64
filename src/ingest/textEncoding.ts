// The text encodings an input file may be in (`--encoding`, config `inputEncoding`), and the streaming decoder of each.
//
// Decoding uses Node's WHATWG TextDecoder with `stream: true` (a multi-byte character split across two chunks is
// kept whole), so no dependency is needed and no file is read whole.
// - `latin1` is decoded as windows-1252, as the Encoding Standard (and so every browser) does for the label
//   "latin1"/"iso-8859-1": the two agree on every printable Latin-1 character, and files said to be Latin-1 very
//   often hold windows-1252's extra characters (€, curly quotes, …) in 0x80–0x9F, where true ISO-8859-1 has only
//   control codes no text uses.
// - A byte order mark wins over the option: a file that starts with one says what it is (see LineNormalizer).

/** Accepted values of `--encoding` / `inputEncoding`; `utf8` is the default. */
export const INPUT_ENCODINGS = ['utf8', 'latin1', 'windows-1252', 'utf16le'] as const;

export type InputEncoding = (typeof INPUT_ENCODINGS)[number];

const WHATWG_LABEL: Record<Exclude<InputEncoding, 'utf8'>, string> = {
  latin1: 'windows-1252',
  'windows-1252': 'windows-1252',
  utf16le: 'utf-16le',
};

/** How the encoding is named in reasons a user reads. */
export const ENCODING_NAME: Record<InputEncoding, string> = {
  utf8: 'UTF-8',
  latin1: 'Latin-1',
  'windows-1252': 'windows-1252',
  utf16le: 'UTF-16LE',
};

/** A streaming decoder for a non-UTF-8 encoding (undefined for UTF-8, which is read as is). */
export function decoderFor(encoding: InputEncoding): InstanceType<typeof TextDecoder> | undefined {
  return encoding === 'utf8' ? undefined : new TextDecoder(WHATWG_LABEL[encoding]);
}
