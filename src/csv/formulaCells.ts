// Shared by ingest (reading a report back) and reports (writing one), so neither imports the other.
// Cells that a spreadsheet would run as a formula (=, +, -, @, tab, CR at the start) are written with a leading
// apostrophe, the usual defence: a user opening failed.csv in Excel must not execute what an export contained.
// Reading a CSV back takes the apostrophe off again, so a report fed to `run` sends exactly the original value.
const FORMULA_START = /^[=+\-@\t\r]/;

export function escapeFormula(cell: string): string {
  return FORMULA_START.test(cell) ? `'${cell}` : cell;
}

/** Undoes escapeFormula: an apostrophe followed by a formula character is taken off. */
export function unescapeFormula(cell: string): string {
  return cell.length > 1 && cell[0] === "'" && FORMULA_START.test(cell.slice(1)) ? cell.slice(1) : cell;
}

export function unescapeFormulas(values: Record<string, string>): Record<string, string> {
  let changed: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(values)) {
    const u = unescapeFormula(v);
    if (u !== v) (changed ??= { ...values })[k] = u;
  }
  return changed ?? values;
}
