// Loaded into a `rc-migrate work` process with `node --import <this file>`: records every POST /v1/receipts the
// worker's undici client makes (start time, duration to the end of the response, status) through undici's
// diagnostics channels, and writes them to $BENCH_PROBE_OUT when the process exits. Nothing in src/ changes and
// the cost is a few map operations per request.
import diagnostics_channel from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const out = process.env.BENCH_PROBE_OUT;
if (out) {
  const origin = performance.timeOrigin;
  /** @type {WeakMap<object, {start: number, status?: number}>} */
  const live = new WeakMap();
  const rec = { start: [], ms: [], status: [] };
  const isReceipt = (request) => request.method === 'POST' && typeof request.path === 'string' && request.path.endsWith('/v1/receipts');
  const done = (request, status) => {
    const entry = live.get(request);
    if (!entry) return;
    live.delete(request);
    const now = performance.now();
    rec.start.push(Math.round((origin + entry.start) * 10) / 10);
    rec.ms.push(Math.round((now - entry.start) * 100) / 100);
    rec.status.push(status ?? entry.status ?? 0);
  };
  diagnostics_channel.subscribe('undici:request:create', ({ request }) => {
    if (isReceipt(request)) live.set(request, { start: performance.now() });
  });
  diagnostics_channel.subscribe('undici:request:headers', ({ request, response }) => {
    const entry = live.get(request);
    if (entry) entry.status = response.statusCode;
  });
  diagnostics_channel.subscribe('undici:request:trailers', ({ request }) => done(request));
  diagnostics_channel.subscribe('undici:request:error', ({ request }) => done(request, -1));
  process.on('exit', () => {
    try {
      writeFileSync(out, JSON.stringify(rec));
    } catch {
      // the benchmark reports the probe as missing
    }
  });
}
