// What a handler decides, kept apart from writing it so latency, rate-limit headers and stats are applied in
// one place (server.ts) whatever the outcome.
import { CODES } from './codes.js';

export interface ApiResponse {
  status: number;
  headers?: Record<string, string>;
  /** Serialised as JSON unless `raw` is set. */
  body?: unknown;
  /** For the proxy-style 502/503 faults, whose bodies are not JSON: clients must survive that too. */
  raw?: { contentType: string; text: string };
}

export interface AttributeError {
  key_name: string;
  message: string;
}

export function apiError(status: number, code: number, message: string, extra?: Record<string, unknown>): ApiResponse {
  return { status, body: { code, message, ...extra } };
}

export function badRequest(message: string, extra?: Record<string, unknown>): ApiResponse {
  return apiError(400, CODES.badRequest, message, extra);
}

export function withHeaders(response: ApiResponse, headers: Record<string, string>): ApiResponse {
  return { ...response, headers: { ...response.headers, ...headers } };
}

/** The v1 `code` of a JSON error body, for stats. */
export function codeOf(response: ApiResponse): number | undefined {
  const body = response.body;
  if (typeof body === 'object' && body !== null && 'code' in body && typeof body.code === 'number') return body.code;
  return undefined;
}
