// Report cells never hand a spreadsheet a formula, and the escaping is undone exactly.
import { describe, expect, it } from 'vitest';
import { escapeFormula, unescapeFormula } from '../src/csv/formulaCells.js';

describe('formula cells in reports', () => {
  it('escapes =, +, -, @, tab and CR at the start of a cell, and undoes exactly that', () => {
    for (const cell of ['=HYPERLINK("http://x","y")', '+1', '-1+1', '@SUM(1)', '\tx', '\rx']) {
      expect(escapeFormula(cell)).toBe(`'${cell}`);
      expect(unescapeFormula(escapeFormula(cell))).toBe(cell);
    }
    for (const cell of ['user-1', "it's", "'quoted", '', '1-1']) {
      expect(escapeFormula(cell)).toBe(cell);
      expect(unescapeFormula(cell)).toBe(cell);
    }
  });
});
