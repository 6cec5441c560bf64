// What a queued row's job carries, and how its input cells come back. A row's receipt is most of the row (an App
// Store receipt runs to several KB) and it sits in the job twice: in the request body, and in the input cells that
// failed.csv needs. So the job keeps it once, in the body: its input cell is left empty and `token_column` names
// the column, and `jobInput` puts the cell back. A queued row then costs Redis about its CSV row, not twice that.
import type { ReceiptJobData } from '../types.js';

/**
 * The job's data with the receipt kept once. The cell is emptied only when it is exactly the body's fetch_token
 * (a cell with surrounding whitespace, trimmed in the body, stays as it was), so `jobInput` gives back the very
 * text that was read. Data already compact, or without such a cell, is returned as it is.
 */
export function compactJobData(data: ReceiptJobData): ReceiptJobData {
  if (data.token_column !== undefined) return data;
  const token = data.body.fetch_token;
  if (token === '') return data;
  for (const column in data.input) {
    if (data.input[column] !== token) continue;
    // A copy with the same column order: failed.csv's columns come from the order of the input cells.
    return { ...data, input: { ...data.input, [column]: '' }, token_column: column };
  }
  return data;
}

/** The row's input cells as they were read (what failed.csv gets), from a job's data, compact or not. */
export function jobInput(data: Pick<ReceiptJobData, 'input' | 'body' | 'token_column'>): Record<string, string> {
  const column = data.token_column;
  if (column === undefined || !Object.hasOwn(data.input, column)) return data.input;
  return { ...data.input, [column]: data.body.fetch_token };
}
