/**
 * cloudflared's argv for the two modes. Flags of `tunnel` (metrics, protocol, grace period, origin, config)
 * go before the `run` subcommand, as urfave/cli requires. The named tunnel's token never appears here: it
 * travels in the `TUNNEL_TOKEN` environment variable so `ps` cannot show it.
 */

export interface TunnelArgsOptions {
  originUrl: string;
  /** `127.0.0.1:PORT` of cloudflared's local metrics server (/ready). */
  metricsAddress: string;
  /** An explicit config file, so no config.yml in ~/.cloudflared or /etc/cloudflared takes over. */
  configPath: string;
  protocol?: string | undefined;
  gracePeriodMs?: number | undefined;
  loglevel?: 'debug' | 'info' | 'warn' | 'error' | undefined;
}

function common(o: TunnelArgsOptions): string[] {
  const out = ['--no-autoupdate', '--config', o.configPath, '--metrics', o.metricsAddress, '--loglevel', o.loglevel ?? 'info'];
  if (o.protocol) out.push('--protocol', o.protocol);
  if (o.gracePeriodMs !== undefined) out.push('--grace-period', `${Math.max(0, Math.round(o.gracePeriodMs / 1000))}s`);
  return out;
}

export function quickTunnelArgs(o: TunnelArgsOptions): string[] {
  return ['tunnel', ...common(o), '--url', o.originUrl];
}

export function namedTunnelArgs(o: TunnelArgsOptions): string[] {
  return ['tunnel', ...common(o), '--url', o.originUrl, 'run'];
}

/** The config file postflow hands cloudflared: valid, and empty of anything that would change routing. */
export const CLOUDFLARED_CONFIG_TEXT = '# written by postflow: an explicit config so no system-wide config.yml applies\nno-autoupdate: true\n';
