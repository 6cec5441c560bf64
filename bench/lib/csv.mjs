// Streams a receipts CSV to disk (never held in memory): platform,app_user_id,fetch_token,product_id,price,currency.
// Every row is a valid Google Play purchase for the sandbox (no sbx directive in the token: an active purchase).
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export const CSV_HEADER = 'platform,app_user_id,fetch_token,product_id,price,currency';
const FILLER = 'AO-J1OxLmNqPrStUvWxYz0123456789aBcDeFgHiJkLmNoPqRsTuVw';

/** The user of row i (0-based): `spread` puts a user's rows users-apart, `grouped` puts them next to each other. */
export function userOf(i, rows, rowsPerUser, order) {
  const users = Math.ceil(rows / rowsPerUser);
  return order === 'grouped' ? Math.floor(i / rowsPerUser) : i % users;
}

export function rowOf(i, rows, { tag, rowsPerUser = 4, order = 'spread' }) {
  const user = `${tag}_user_${String(userOf(i, rows, rowsPerUser, order)).padStart(7, '0')}`;
  const token = `${tag}.${String(i).padStart(8, '0')}.${FILLER}`;
  return { platform: 'android', app_user_id: user, fetch_token: token, product_id: 'bench.monthly', price: '4.99', currency: 'USD' };
}

/** Writes `rows` data rows after the header; resolves with the byte size once flushed. */
export async function writeReceiptsCsv(path, rows, { tag, rowsPerUser = 4, order = 'spread' }) {
  const out = createWriteStream(path);
  const BLOCK = 5000;
  let bytes = 0;
  const write = async (text) => {
    bytes += Buffer.byteLength(text);
    if (!out.write(text)) await once(out, 'drain');
  };
  await write(`${CSV_HEADER}\n`);
  for (let start = 0; start < rows; start += BLOCK) {
    let block = '';
    for (let i = start; i < Math.min(rows, start + BLOCK); i++) {
      const r = rowOf(i, rows, { tag, rowsPerUser, order });
      block += `${r.platform},${r.app_user_id},${r.fetch_token},${r.product_id},${r.price},${r.currency}\n`;
    }
    await write(block);
  }
  out.end();
  await once(out, 'close');
  return bytes;
}
