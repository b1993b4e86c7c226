/**
 * cloudflared's local metrics server: `/ready`, `/metrics` (Prometheus text), `/quicktunnel`,
 * `/healthcheck`. The supervisor decides readiness from `/ready` exactly as it would with the real binary.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MetricsSource {
  readyConnections(): number;
  totalRequests(): number;
  inFlight(): number;
  connectorId: string;
  quickHostname: string;
}

export function renderMetrics(src: MetricsSource): string {
  return [
    '# HELP build_info Build and version information',
    '# TYPE build_info gauge',
    'build_info{goversion="go1.24.6",revision="2025.8.1",type="standin",version="2025.8.1"} 1',
    '# HELP cloudflared_tunnel_ha_connections Number of active ha connections',
    '# TYPE cloudflared_tunnel_ha_connections gauge',
    `cloudflared_tunnel_ha_connections ${src.readyConnections()}`,
    '# HELP cloudflared_tunnel_total_requests Amount of requests proxied through all the tunnels',
    '# TYPE cloudflared_tunnel_total_requests counter',
    `cloudflared_tunnel_total_requests ${src.totalRequests()}`,
    '# HELP cloudflared_tunnel_concurrent_requests_per_tunnel Concurrent requests proxied through each tunnel',
    '# TYPE cloudflared_tunnel_concurrent_requests_per_tunnel gauge',
    `cloudflared_tunnel_concurrent_requests_per_tunnel ${src.inFlight()}`,
    '',
  ].join('\n');
}

export function createMetricsServer(src: MetricsSource): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/ready') {
      const n = src.readyConnections();
      const status = n > 0 ? 200 : 503;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status, readyConnections: n, connectorId: src.connectorId }));
    } else if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(renderMetrics(src));
    } else if (path === '/quicktunnel') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ hostname: src.quickHostname }));
    } else if (path === '/healthcheck') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('OK\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
    }
  });
}

/** Listens on `host:port`; without an address, the first free of 20241–20245, then any port, like cloudflared. */
export async function listenMetrics(server: Server, address: string | undefined): Promise<string> {
  const candidates: Array<[string, number]> = [];
  if (address !== undefined) {
    const i = address.lastIndexOf(':');
    candidates.push([address.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1', Number(address.slice(i + 1))]);
  } else {
    for (let p = 20241; p <= 20245; p++) candidates.push(['127.0.0.1', p]);
    candidates.push(['127.0.0.1', 0]);
  }
  let lastError: unknown;
  for (const [host, port] of candidates) {
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          resolve();
        });
      });
      const bound = server.address() as AddressInfo;
      return `${host}:${bound.port}`;
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}
