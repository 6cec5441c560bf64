// `serve`: a monitoring endpoint for a migration in progress, from any machine that reaches its Redis:
// Prometheus metrics of every queue and recent run, a health check, and a live queue dashboard.
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { PipelineMetrics } from '../metrics/metrics.js';
import { registerQueueMetrics } from '../metrics/queueMetrics.js';
import { startMonitorServer, type MonitorServer } from '../metrics/server.js';
import { checkOptions, serveOptionsRule } from '../options.js';
import { openRunsQueue } from '../schedule/scheduler.js';
import { openContext } from '../session/context.js';
import { Resources } from '../session/resources.js';

export async function serveMonitor(opts: { config: Config; logger: Logger; port: number; host?: string }): Promise<MonitorServer> {
  checkOptions(serveOptionsRule, opts, 'serveMonitor');
  const resources = new Resources();
  try {
    const ctx = await openContext(opts.config, resources);
    const runs = resources.add('runs queue', openRunsQueue(ctx.redis, opts.config.prefix), (q) => q.close());
    const metrics = new PipelineMetrics({ defaultMetrics: true });
    registerQueueMetrics(metrics.registry, { redis: ctx.redis, prefix: opts.config.prefix, queues: [ctx.queue, runs] });
    const server = resources.add(
      'monitor server',
      await startMonitorServer({
        port: opts.port,
        ...(opts.host ? { host: opts.host } : {}),
        registry: metrics.registry,
        health: async () => (await ctx.redis.ping()) === 'PONG',
        dashboardQueues: [ctx.queue, runs],
      }),
      (s) => s.close(),
    );
    opts.logger.info({ url: server.url }, 'serving /metrics, /healthz and /dashboard');
    return { url: server.url, close: () => resources.releaseAll() };
  } catch (err) {
    await resources.releaseAll();
    throw err;
  }
}
