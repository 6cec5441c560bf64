// Spreadsheet exports through the whole pipeline (issue 12): Excel's `sep=;` hint, and files saved as Latin-1,
// windows-1252 or UTF-16LE read with the `inputEncoding` configuration (--encoding), migrated to the sandbox with
// their text intact and every row accounted for at its real line.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runMigration } from '../src/commands/run.js';
import type { Config } from '../src/config.js';
import { silentLogger } from '../src/logger.js';
import { readCsvFile, testConfig, token } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';

/** windows-1252 bytes of text (the characters it has beyond Latin-1 in 0x80-0x9F, Latin-1 itself as is). */
const CP1252: Record<string, number> = { '€': 0x80, '‘': 0x91, '’': 0x92, '“': 0x93, '”': 0x94, '–': 0x96, '—': 0x97, '…': 0x85 };
const cp1252 = (text: string): Buffer =>
  Buffer.from(
    Array.from(text, (ch) => {
      const byte = CP1252[ch] ?? ch.charCodeAt(0);
      if (byte > 0xff) throw new Error(`${ch} is not in windows-1252`);
      return byte;
    }),
  );

describe('spreadsheet exports', () => {
  const fx = pipelineFixture('sheets');
  const logger = silentLogger();

  const run = async (name: string, content: Buffer | string, config: Config, platform: 'ios' | 'android' = 'ios') => {
    const path = join(fx.dir, name);
    await writeFile(path, content);
    const result = await runMigration({
      config,
      logger,
      sources: [path],
      runId: name.replace(/\W/g, '-'),
      outDir: join(fx.dir, `out-${name}`),
      columns: { platform },
      pollMs: 20,
      progressEveryMs: 0,
    });
    const [succeeded, rejected] = await Promise.all([readCsvFile(result.files.succeeded), readCsvFile(result.files.rejected)]);
    return { summary: result.summary, succeeded, rejected };
  };
  const attribute = (user: string, name: string): string | undefined => fx.sandbox.peekSubscriber(user)?.subscriber_attributes?.[name]?.value;

  it("a file with Excel's sep=; line migrates, with semicolons between columns, commas in cells and the file's own line numbers", async () => {
    const csv = [
      'sep=;',
      'app_user_id;receipt;$displayName;price;currency',
      `sep-1;${token(1)};"Smith, Jane";;`,
      `sep-2;${token(2)};"semi;colon";;`,
      '',
      `guest;${token(3)};blocked;;`,
      `sep-4;${token(4)};x;9.99;EUR`,
      '',
    ].join('\r\n');
    const { summary, succeeded, rejected } = await run('excel-sep.csv', csv, testConfig(fx.prefix, fx.sandbox.url));
    expect(summary).toMatchObject({ status: 'complete', rows_read: 4, rows_succeeded: 3, rows_rejected: 1 });
    expect(succeeded.map((r) => Number(r.line)).sort((a, b) => a - b)).toEqual([3, 4, 7]);
    expect(rejected.map((r) => [r.error_line, r.app_user_id])).toEqual([['6', 'guest']]);
    expect(attribute('sep-1', '$displayName')).toBe('Smith, Jane');
    expect(attribute('sep-2', '$displayName')).toBe('semi;colon');
  });

  it('a Latin-1 file with accented names, read with inputEncoding latin1, reaches RevenueCat as the same text', async () => {
    const text = `app_user_id,receipt,$displayName,$email\r\njosé,${token(10)},José Müller,jose@example.com\r\nfrançoise,${token(11)},Françoise Ørsted-Ñúñez,\r\n`;
    const bytes = Buffer.from(text, 'latin1');
    expect(bytes.length).toBe(text.length); // one byte per character: not UTF-8
    const { summary, succeeded } = await run('latin1.csv', bytes, testConfig(fx.prefix, fx.sandbox.url, { inputEncoding: 'latin1' }));
    expect(summary).toMatchObject({ rows_read: 2, rows_succeeded: 2, rows_rejected: 0 });
    expect(succeeded.map((r) => r.app_user_id).sort()).toEqual(['françoise', 'josé']);
    expect(attribute('josé', '$displayName')).toBe('José Müller');
    expect(attribute('françoise', '$displayName')).toBe('Françoise Ørsted-Ñúñez');
  });

  it('the same Latin-1 file read as UTF-8 (the default) sends nothing and rejects each row, naming the column', async () => {
    const bytes = Buffer.from(`app_user_id,receipt,$displayName\nrené,${token(12)},René\n`, 'latin1');
    const { summary, rejected } = await run('latin1-default.csv', bytes, testConfig(fx.prefix, fx.sandbox.url));
    expect(summary).toMatchObject({ rows_read: 1, rows_succeeded: 0, rows_rejected: 1 });
    expect(rejected[0]?.error_reason).toBe('not valid UTF-8 (column "app_user_id"); save the file as UTF-8');
    expect(fx.sandbox.peekSubscriber('rené')).toBeUndefined();
  });

  it('a windows-1252 file with € and curly quotes, and a sep=; hint, read with inputEncoding windows-1252', async () => {
    const text = `sep=;\r\napp_user_id;receipt;$note\r\nw-1;${token(20)};“Gold” plan – 9,99 € … ‘intro’ — ok\r\n`;
    const { summary } = await run('cp1252.csv', cp1252(text), testConfig(fx.prefix, fx.sandbox.url, { inputEncoding: 'windows-1252' }));
    expect(summary).toMatchObject({ rows_read: 1, rows_succeeded: 1 });
    expect(attribute('w-1', '$note')).toBe('“Gold” plan – 9,99 € … ‘intro’ — ok');
  });

  it('a UTF-16LE file without a byte order mark, read with inputEncoding utf16le', async () => {
    const text = `app_user_id,product_id,token,$displayName\r\nü-1,gold,${token(30)},Jürgen 用户\r\nü-2,gold,${token(31)},"Zoë, Ana"\r\n`;
    const { summary, succeeded } = await run('utf16le.csv', Buffer.from(text, 'utf16le'), testConfig(fx.prefix, fx.sandbox.url, { inputEncoding: 'utf16le' }), 'android');
    expect(summary).toMatchObject({ rows_read: 2, rows_succeeded: 2 });
    expect(succeeded.map((r) => Number(r.line)).sort()).toEqual([2, 3]);
    expect(attribute('ü-1', '$displayName')).toBe('Jürgen 用户');
    expect(attribute('ü-2', '$displayName')).toBe('Zoë, Ana');
  });
});
