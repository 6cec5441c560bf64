// `serve`: a monitoring endpoint for a migration in progress, from any machine that reaches its Redis:
// Prometheus metrics of every queue and recent run, a health check, and a live queue dashboard.
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { registerQueueMetrics } from '../metrics/queueMetrics.js';
import { startMonitorServer, type MonitorServer } from '../metrics/server.js';
import { PipelineMetrics } from '../metrics/metrics.js';
import { openRunsQueue } from '../schedule/scheduler.js';
import { openContext } from './context.js';

export async function serveMonitor(opts: { config: Config; logger: Logger; port: number; host?: string }): Promise<MonitorServer> {
  const ctx = await openContext(opts.config);
  const runs = openRunsQueue(ctx.redis, opts.config.prefix);
  const metrics = new PipelineMetrics({ defaultMetrics: true });
  registerQueueMetrics(metrics.registry, { redis: ctx.redis, prefix: opts.config.prefix, queues: [ctx.queue, runs] });
  const server = await startMonitorServer({
    port: opts.port,
    ...(opts.host ? { host: opts.host } : {}),
    registry: metrics.registry,
    health: async () => (await ctx.redis.ping()) === 'PONG',
    dashboardQueues: [ctx.queue, runs],
  });
  opts.logger.info({ url: server.url }, 'serving /metrics, /healthz and /dashboard');
  return {
    url: server.url,
    async close() {
      await server.close();
      await runs.close();
      await ctx.close();
    },
  };
}
