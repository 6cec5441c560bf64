// The HTTP face of a process for operators: /metrics for Prometheus, /healthz for orchestrators, and (for
// `serve`) a live BullMQ dashboard at /dashboard. Bound to 127.0.0.1 unless told otherwise: the dashboard
// can pause and retry jobs, so exposing it is a deliberate choice.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type RequestHandler } from 'express';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Registry } from 'prom-client';
import { PipelineMetrics } from './metrics.js';

export interface MonitorServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** true when the process can do its work (Redis answers) */
  health: () => Promise<boolean>;
  /** queues to show in the dashboard; no dashboard when absent */
  dashboardQueues?: Queue[];
}

export interface MonitorServer {
  url: string;
  close(): Promise<void>;
}

export async function startMonitorServer(opts: MonitorServerOptions): Promise<MonitorServer> {
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', async (_req, res) => {
    try {
      res.set('Content-Type', opts.registry.contentType).send(await opts.registry.metrics());
    } catch (err) {
      res.status(500).send(`metrics unavailable: ${(err as Error).message}`);
    }
  });
  app.get('/healthz', async (_req, res) => {
    const ok = await opts.health().catch(() => false);
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable' });
  });
  if (opts.dashboardQueues) {
    const adapter = new ExpressAdapter();
    adapter.setBasePath('/dashboard');
    createBullBoard({ queues: opts.dashboardQueues.map((q) => new BullMQAdapter(q)), serverAdapter: adapter });
    app.use('/dashboard', adapter.getRouter() as RequestHandler);
  }
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(opts.port, opts.host ?? '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
    s.on('error', reject);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * `--metrics-port`: this process's own metrics (and /healthz) on a port while it works. The metrics given are
 * served, else new ones with the process's CPU and memory.
 */
export async function serveProcessMetrics(opts: { port: number; host?: string; metrics?: PipelineMetrics }): Promise<{ metrics: PipelineMetrics; server: MonitorServer }> {
  const metrics = opts.metrics ?? new PipelineMetrics({ defaultMetrics: true });
  const server = await startMonitorServer({ port: opts.port, ...(opts.host ? { host: opts.host } : {}), registry: metrics.registry, health: () => Promise.resolve(true) });
  return { metrics, server };
}
