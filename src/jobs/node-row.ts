/** A `nodes` table row as the store interface reports it — one mapping for both stores' `nodes()`. */
import type { FleetNode } from './store.ts';

export function nodeFromRow(r: Record<string, unknown>, held: ReadonlyMap<string, string[]>): FleetNode {
  return {
    nodeId: r.node_id as string,
    host: r.host as string,
    pid: r.pid as number,
    startedAt: Number(r.started_at),
    heartbeatAt: Number(r.heartbeat_at),
    stoppedAt: r.stopped_at == null ? null : Number(r.stopped_at),
    jobs: held.get(r.node_id as string) ?? [],
  };
}
