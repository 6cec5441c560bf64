import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RevenueCatClient, type ApiResult } from '../src/revenuecat/client.js';
import { parseRetryAfter, readRetryAfter } from '../src/revenuecat/retryAfter.js';
import type { ReceiptBody } from '../src/revenuecat/fields.js';

const API_KEY = 'appl_TestSecretKey123456789';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

let server: http.Server;
let port: number;
let handler: Handler;
let seen: Seen[] = [];
let connections = 0;
let client: RevenueCatClient | undefined;

const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

const okSubscriber = { request_date_ms: 1, subscriber: { original_app_user_id: 'u1', entitlements: {}, subscriptions: {}, non_subscriptions: {} } };

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen = [];
  connections = 0;
  handler = (_req, res) => json(res, 200, okSubscriber);
});

afterEach(async () => {
  // Hanging handlers leave sockets open: drop them so close() does not wait.
  server.closeAllConnections();
  await client?.close();
  client = undefined;
});

function makeClient(opts: { baseUrl?: string; timeoutMs?: number; connections?: number; userAgent?: string; maxRetryAfterMs?: number } = {}): RevenueCatClient {
  client = new RevenueCatClient({
    baseUrl: opts.baseUrl ?? `http://127.0.0.1:${port}`,
    apiKey: API_KEY,
    timeoutMs: opts.timeoutMs ?? 2_000,
    ...(opts.connections === undefined ? {} : { connections: opts.connections }),
    ...(opts.userAgent === undefined ? {} : { userAgent: opts.userAgent }),
    ...(opts.maxRetryAfterMs === undefined ? {} : { maxRetryAfterMs: opts.maxRetryAfterMs }),
  });
  return client;
}

const receipt: ReceiptBody = { app_user_id: 'user-1', fetch_token: 'tok_abc', product_id: 'premium', price: 9.99, currency: 'USD' };

function response(r: ApiResult): Extract<ApiResult, { kind: 'response' }> {
  if (r.kind !== 'response') throw new Error(`expected a response, got network ${r.error}: ${r.message}`);
  return r;
}

describe('postReceipt request', () => {
  it('sends the headers and the JSON body exactly, with both import flags forced to false', async () => {
    const c = makeClient({ userAgent: 'rc-migrate-test/1' });
    const sneaky = { ...receipt, create_events: true, should_update_last_seen_fields: true } as unknown as ReceiptBody;
    const r = response(await c.postReceipt('android', sneaky));
    expect(r.status).toBe(200);
    expect(seen).toHaveLength(1);
    const req = seen[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v1/receipts');
    expect(req.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(req.headers['x-platform']).toBe('android');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers.accept).toBe('application/json');
    expect(req.headers['user-agent']).toBe('rc-migrate-test/1');
    expect(JSON.parse(req.body)).toEqual({
      app_user_id: 'user-1',
      fetch_token: 'tok_abc',
      product_id: 'premium',
      price: 9.99,
      currency: 'USD',
      create_events: false,
      should_update_last_seen_fields: false,
    });
  });

  it('sends a default User-Agent', async () => {
    const c = makeClient();
    await c.postReceipt('ios', receipt);
    expect(seen[0]!.headers['user-agent']).toMatch(/^rc-migrate\//);
  });

  it.each([
    ['', '/v1/receipts'],
    ['/', '/v1/receipts'],
    ['/rc', '/rc/v1/receipts'],
    ['/rc/', '/rc/v1/receipts'],
    ['/a/b//', '/a/b/v1/receipts'],
  ])('base URL suffix %j posts to %s', async (suffix, path) => {
    const c = makeClient({ baseUrl: `http://127.0.0.1:${port}${suffix}` });
    response(await c.postReceipt('ios', receipt));
    expect(seen[0]!.url).toBe(path);
  });

  it('parses a JSON body and returns the status', async () => {
    handler = (_req, res) => json(res, 201, okSubscriber);
    const r = response(await makeClient().postReceipt('ios', receipt));
    expect(r.status).toBe(201);
    expect(r.body).toEqual(okSubscriber);
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('turns an HTML 502 page into { raw } with the first 200 characters', async () => {
    const html = `<html><head><title>502 Bad Gateway</title></head><body>${'x'.repeat(500)}</body></html>`;
    handler = (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(html);
    };
    const r = response(await makeClient().postReceipt('ios', receipt));
    expect(r.status).toBe(502);
    expect(r.body).toEqual({ raw: html.slice(0, 200) });
  });

  it('an empty body becomes { raw: "" }', async () => {
    handler = (_req, res) => {
      res.writeHead(503);
      res.end();
    };
    const r = response(await makeClient().postReceipt('ios', receipt));
    expect(r).toMatchObject({ status: 503, body: { raw: '' } });
  });
});

describe('getSubscriber', () => {
  it('URL-encodes the app_user_id and sends X-Platform only when given', async () => {
    const c = makeClient({ baseUrl: `http://127.0.0.1:${port}/prefix/` });
    response(await c.getSubscriber('a b/c?d#e%ü'));
    response(await c.getSubscriber('$RCAnonymousID:abc', 'stripe'));
    expect(seen[0]!.method).toBe('GET');
    expect(seen[0]!.url).toBe(`/prefix/v1/subscribers/${encodeURIComponent('a b/c?d#e%ü')}`);
    expect(seen[0]!.url).toBe('/prefix/v1/subscribers/a%20b%2Fc%3Fd%23e%25%C3%BC');
    expect(seen[0]!.headers['x-platform']).toBeUndefined();
    expect(seen[0]!.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(seen[1]!.url).toBe('/prefix/v1/subscribers/%24RCAnonymousID%3Aabc');
    expect(seen[1]!.headers['x-platform']).toBe('stripe');
  });
});

describe('Retry-After, backoff_ms and rate-limit headers', () => {
  it('reads Retry-After in integer seconds', async () => {
    handler = (_req, res) => json(res, 429, { code: 7638, message: 'busy' }, { 'retry-after': '3' });
    expect(response(await makeClient().postReceipt('ios', receipt)).headers.retryAfterMs).toBe(3000);
  });

  it('reads Retry-After in decimal seconds', async () => {
    handler = (_req, res) => json(res, 429, { message: 'slow down' }, { 'retry-after': '1.5' });
    expect(response(await makeClient().postReceipt('ios', receipt)).headers.retryAfterMs).toBe(1500);
  });

  it('reads Retry-After as an HTTP date', async () => {
    const at = new Date(Date.now() + 10_000).toUTCString();
    handler = (_req, res) => json(res, 503, { message: 'later' }, { 'retry-after': at });
    const ms = response(await makeClient().postReceipt('ios', receipt)).headers.retryAfterMs;
    // HTTP dates have one-second resolution.
    expect(ms).toBeGreaterThan(8_000);
    expect(ms).toBeLessThanOrEqual(10_000);
  });

  it('prefers a body backoff_ms over Retry-After', async () => {
    handler = (_req, res) => json(res, 429, { object: 'error', type: 'rate_limit_error', message: 'x', backoff_ms: 2500 }, { 'retry-after': '60' });
    expect(response(await makeClient().postReceipt('ios', receipt)).headers.retryAfterMs).toBe(2500);
  });

  it('leaves retryAfterMs unset without a header or backoff_ms, and for garbage', async () => {
    handler = (_req, res) => json(res, 429, { message: 'x' }, { 'retry-after': 'soon-ish' });
    expect(response(await makeClient().postReceipt('ios', receipt)).headers).toEqual({});
  });

  it('reads the RevenueCat rate-limit headers', async () => {
    handler = (_req, res) => json(res, 200, okSubscriber, { 'RevenueCat-Rate-Limit-Current-Limit': '480', 'RevenueCat-Rate-Limit-Current-Usage': '17' });
    expect(response(await makeClient().postReceipt('ios', receipt)).headers).toEqual({ rateLimitPerMinute: 480, rateLimitUsage: 17 });
  });

  it('reads a Retry-After over 10 minutes as milliseconds (the older API reference), once with a warning note', async () => {
    handler = (_req, res) => json(res, 429, { message: 'slow down' }, { 'retry-after': '1000' });
    const meta = response(await makeClient().postReceipt('ios', receipt)).headers;
    expect(meta.retryAfterMs).toBe(1000);
    expect(meta.retryAfterNote).toMatch(/^Retry-After: 1000 .*read as 1000 ms/);
  });

  it('caps a wait longer than maxRetryAfterMs, naming the value', async () => {
    handler = (_req, res) => json(res, 429, { message: 'slow down' }, { 'retry-after': '7200000' });
    const meta = response(await makeClient({ maxRetryAfterMs: 30_000 }).postReceipt('ios', receipt)).headers;
    expect(meta.retryAfterMs).toBe(30_000);
    expect(meta.retryAfterNote).toMatch(/Retry-After: 7200000 .*maxRetryAfterMs \(30000 ms\)/);
  });

  it('reads Is-Retryable', async () => {
    handler = (_req, res) => json(res, 500, { code: 7110, message: 'x' }, { 'is-retryable': 'false' });
    expect(response(await makeClient().postReceipt('ios', receipt)).headers).toEqual({ isRetryable: false });
  });

  it('readRetryAfter: seconds up to 10 minutes as the spec says; beyond, milliseconds when plausible, else the cap', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    const max = 120_000;
    expect(readRetryAfter('1', now, max)).toEqual({ ms: 1000, reading: 'seconds', raw: '1' });
    expect(readRetryAfter('90', now, max)).toEqual({ ms: 90_000, reading: 'seconds', raw: '90' });
    // Under 10 minutes in seconds but over the cap: capped.
    expect(readRetryAfter('300', now, max)).toEqual({ ms: 120_000, reading: 'capped', raw: '300' });
    // Over 10 minutes in seconds: milliseconds (1000 is a second, not a quarter of an hour).
    expect(readRetryAfter('1000', now, max)).toEqual({ ms: 1000, reading: 'milliseconds', raw: '1000' });
    expect(readRetryAfter('60000', now, max)).toEqual({ ms: 60_000, reading: 'milliseconds', raw: '60000' });
    // Not plausible as milliseconds either (over the cap, or a fraction): the cap.
    expect(readRetryAfter('3600000', now, max)).toEqual({ ms: 120_000, reading: 'capped', raw: '3600000' });
    expect(readRetryAfter('700.5', now, max)).toEqual({ ms: 120_000, reading: 'capped', raw: '700.5' });
    // An HTTP date further than the cap: capped.
    expect(readRetryAfter('Wed, 01 Jan 2025 01:00:00 GMT', now, max)).toEqual({ ms: 120_000, reading: 'capped', raw: 'Wed, 01 Jan 2025 01:00:00 GMT' });
    expect(readRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now, max)?.reading).toBe('date');
  });

  it('parseRetryAfter handles seconds, dates in the past, negatives and junk', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 2 ', now)).toBe(2000);
    expect(parseRetryAfter('0.25', now)).toBe(250);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('abc', now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('network failures', () => {
  it('ends a request whose server never answers in a timeout within timeoutMs', async () => {
    handler = () => {
      /* never respond */
    };
    const started = Date.now();
    const r = await makeClient({ timeoutMs: 300 }).postReceipt('ios', receipt);
    const elapsed = Date.now() - started;
    expect(r).toMatchObject({ kind: 'network', error: 'timeout' });
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1_500);
  });

  it('ends a request whose body stalls half-way in a timeout', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"subscriber":');
    };
    const started = Date.now();
    const r = await makeClient({ timeoutMs: 300 }).postReceipt('ios', receipt);
    expect(r).toMatchObject({ kind: 'network', error: 'timeout' });
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('reports reset when the server destroys the socket', async () => {
    handler = (req) => {
      req.socket.destroy();
    };
    const r = await makeClient().postReceipt('ios', receipt);
    expect(r).toMatchObject({ kind: 'network', error: 'reset' });
  });

  it('reports reset on a TCP RST', async () => {
    handler = (req) => {
      req.socket.resetAndDestroy();
    };
    const r = await makeClient().postReceipt('ios', receipt);
    expect(r).toMatchObject({ kind: 'network', error: 'reset' });
  });

  it('reports refused for a closed port', async () => {
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const r = await makeClient({ baseUrl: `http://127.0.0.1:${closedPort}` }).postReceipt('ios', receipt);
    expect(r).toMatchObject({ kind: 'network', error: 'refused' });
  });
});

describe('keep-alive', () => {
  it('reuses one connection for sequential requests', async () => {
    const c = makeClient({ connections: 4 });
    for (let i = 0; i < 5; i += 1) expect(response(await c.postReceipt('ios', receipt)).status).toBe(200);
    expect(seen).toHaveLength(5);
    expect(connections).toBe(1);
  });

  it('opens at most `connections` sockets under concurrency', async () => {
    handler = (_req, res) => setTimeout(() => json(res, 200, okSubscriber), 50);
    const c = makeClient({ connections: 2 });
    const results = await Promise.all(Array.from({ length: 6 }, () => c.postReceipt('ios', receipt)));
    expect(results.every((r) => r.kind === 'response' && r.status === 200)).toBe(true);
    expect(connections).toBe(2);
  });
});

describe('the API key never leaks', () => {
  it('is scrubbed from a body that echoes it (JSON and HTML)', async () => {
    handler = (req, res) => json(res, 401, { code: 7225, message: `Invalid API key: ${String(req.headers.authorization)}` });
    const r1 = await makeClient().postReceipt('ios', receipt);
    expect(response(r1).body).toMatchObject({ code: 7225 });
    expect(JSON.stringify(r1)).not.toContain(API_KEY);
    expect(JSON.stringify(r1)).toContain('[redacted]');

    handler = (req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(`<p>${String(req.headers.authorization)}</p>`);
    };
    const r2 = await client!.postReceipt('ios', receipt);
    expect(JSON.stringify(r2)).not.toContain(API_KEY);
  });

  it('is absent from network error results', async () => {
    handler = (req) => {
      req.socket.destroy();
    };
    const reset = await makeClient().postReceipt('ios', receipt);
    handler = () => {};
    await client!.close();
    const timeout = await makeClient({ timeoutMs: 200 }).postReceipt('ios', receipt);
    await client!.close();
    const refused = await makeClient({ baseUrl: 'http://127.0.0.1:1' }).postReceipt('ios', receipt);
    for (const r of [reset, timeout, refused]) {
      expect(r.kind).toBe('network');
      if (r.kind === 'network') expect(r.message.length).toBeGreaterThan(0);
      expect(JSON.stringify(r)).not.toContain(API_KEY);
    }
  });

  it('is absent from constructor errors', () => {
    const bad = () => new RevenueCatClient({ baseUrl: `not a url ${API_KEY}`, apiKey: API_KEY, timeoutMs: 1000 });
    expect(bad).toThrow(/invalid RevenueCat base URL/);
    try {
      bad();
    } catch (e) {
      expect(String((e as Error).message)).not.toContain(API_KEY);
    }
    expect(() => new RevenueCatClient({ baseUrl: 'http://x', apiKey: 'appl_a\r\nX-Evil: 1', timeoutMs: 1000 })).toThrow(/whitespace or control/);
    expect(() => new RevenueCatClient({ baseUrl: 'http://x', apiKey: API_KEY, timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});

describe('close', () => {
  it('can be called twice', async () => {
    const c = makeClient();
    await c.postReceipt('ios', receipt);
    await c.close();
    await expect(c.close()).resolves.toBeUndefined();
  });
});
