// Reading and writing on node:http, kept free of sandbox logic.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiResponse } from './responses.js';
import type { ParsedBody } from './validate.js';

/** Apple receipts run to a few hundred KB; anything near this is a client bug, not a receipt. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<ParsedBody & { empty: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Keep draining so the client sees an answer rather than a stalled upload.
    if (size > limit) tooLarge = true;
    else chunks.push(chunk);
  }
  if (tooLarge) return { ok: false, reason: `body larger than ${limit} bytes`, empty: false };
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return { ok: false, reason: 'body is empty', empty: true };
  try {
    return { ok: true, value: JSON.parse(text) as unknown, empty: false };
  } catch (error) {
    return { ok: false, reason: (error as Error).message, empty: false };
  }
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Returns false when the client is already gone (nothing written). */
export function writeResponse(res: ServerResponse, response: ApiResponse, extraHeaders: Record<string, string>): boolean {
  if (res.destroyed || res.writableEnded || res.headersSent) return false;
  const headers: Record<string, string> = { ...extraHeaders, ...response.headers };
  let payload: string;
  if (response.raw) {
    headers['Content-Type'] = response.raw.contentType;
    payload = response.raw.text;
  } else {
    headers['Content-Type'] = 'application/json; charset=utf-8';
    payload = JSON.stringify(response.body ?? {});
  }
  headers['Content-Length'] = String(Buffer.byteLength(payload));
  res.writeHead(response.status, headers);
  res.end(payload);
  return true;
}
