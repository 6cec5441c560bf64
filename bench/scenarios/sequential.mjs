// Scenario 5, the way RevenueCat's sample import script works: one request at a time, one second of sleep after
// each, with plain fetch (same headers and body as src/revenuecat/client.ts), against the scenario-1 sandbox.
import { rowOf } from '../lib/csv.mjs';
import { SANDBOX_KEY, USER_AGENT, log, percentile, round, scaled, sleep } from '../lib/util.mjs';

export async function sequentialScenario(ctx, sandbox, rateResult) {
  const rows = scaled(100, ctx.scale, 5);
  const latencies = [];
  const byStatus = {};
  log(`sequential: ${rows} requests, one at a time, 1 s sleep after each`);
  const started = performance.now();
  for (let i = 0; i < rows; i++) {
    const r = rowOf(i, rows, { tag: 's', rowsPerUser: 1 });
    const body = { app_user_id: r.app_user_id, fetch_token: r.fetch_token, product_id: r.product_id, price: Number(r.price), currency: r.currency };
    const t = performance.now();
    const res = await fetch(`${sandbox.url}/v1/receipts`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${SANDBOX_KEY}`,
        accept: 'application/json',
        'user-agent': USER_AGENT,
        'x-platform': r.platform,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ ...body, create_events: false, should_update_last_seen_fields: false }),
    });
    await res.arrayBuffer();
    latencies.push(performance.now() - t);
    byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
    await sleep(1000);
  }
  const totalMs = performance.now() - started;
  const perRowMs = totalMs / rows;
  const sorted = [...latencies].sort((a, b) => a - b);
  const projected20kMs = perRowMs * 20_000;
  // Scenario 1's time for its rows (workers spawned to last outcome), scaled to 20,000 rows when it ran fewer.
  const pipeline20kMs = rateResult?.wallMs !== undefined ? (rateResult.wallMs * 20_000) / rateResult.rows : undefined;
  const result = {
    rows,
    totalMs: Math.round(totalMs),
    perRowMs: round(perRowMs, 1),
    byStatus,
    latencyMs: { p50: round(percentile(sorted, 50), 1), p95: round(percentile(sorted, 95), 1) },
    projected20kMs: Math.round(projected20kMs),
    pipeline20kMs: pipeline20kMs === undefined ? undefined : Math.round(pipeline20kMs),
    pipelineRows: rateResult?.rows,
    pipelineMeasuredMs: rateResult?.wallMs,
    speedup: pipeline20kMs ? round(projected20kMs / pipeline20kMs, 1) : undefined,
  };
  log(`sequential: ${rows} rows in ${(totalMs / 1000).toFixed(1)} s → 20,000 rows ≈ ${(projected20kMs / 3600e3).toFixed(2)} h`);
  return result;
}
