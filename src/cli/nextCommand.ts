// After a canary, the command that sends the rest: the user's own command line without --limit, and with the
// run id (a canary without --run-id got a new one, which the continuation must name). Quoted for a POSIX shell.

/** The canary's command line (argv without node and the script) → the command that continues the run. */
export function continueCommand(args: readonly string[], runId: string): string {
  const kept: string[] = [];
  let hasRunId = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--limit') {
      i++; // and its value
      continue;
    }
    if (arg.startsWith('--limit=')) continue;
    if (arg === '--run-id' || arg.startsWith('--run-id=')) hasRunId = true;
    kept.push(arg);
  }
  if (!hasRunId) kept.push('--run-id', runId);
  return ['rc-migrate', ...kept].map(shellQuote).join(' ');
}

/** A word as a POSIX shell reads it back: bare when safe, else in single quotes. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
