// Which Redis failure an ioredis error is, by the text Redis (or ioredis) gave it: directly, from a script, or
// inside an aborted MULTI, whose error carries the queued commands' own errors in \`previousErrors\`.

/** True when \`err\`, or one of the errors an aborted MULTI carries, says \`text\`. */
export function redisErrorSays(err: unknown, text: string): boolean {
  if (!(err instanceof Error)) return false;
  if (err.message.includes(text)) return true;
  const previous = (err as { previousErrors?: unknown }).previousErrors;
  return Array.isArray(previous) && previous.some((e) => redisErrorSays(e, text));
}
