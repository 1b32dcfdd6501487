// Caps on open TCP connections: in all, and per client address. Node's HTTP server takes every connection it is
// offered, so one client that opens thousands (by mistake or on purpose) would hold the process's sockets and
// memory and starve everyone else. A connection over a cap is closed at once, before any request is read.
// Behind a Service or an Ingress every request may come from the proxy's address, so the per-client cap is set
// high enough for a proxy's pool and can be raised.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** Open connections in all; default 4096. */
  maxConnections?: number;
  /** Open connections from one remote address; default 256. */
  maxConnectionsPerClient?: number;
}

export const DEFAULT_CONNECTION_LIMITS = { maxConnections: 4096, maxConnectionsPerClient: 256 } as const;

/** Applies the caps to `server`; `onRefused` is told of each connection closed, with which cap it broke. */
export function limitConnections(server: Server, limits: ConnectionLimits, onRefused: (cap: 'total' | 'per_client') => void): { open: () => number } {
  const maxTotal = limits.maxConnections ?? DEFAULT_CONNECTION_LIMITS.maxConnections;
  const maxPerClient = limits.maxConnectionsPerClient ?? DEFAULT_CONNECTION_LIMITS.maxConnectionsPerClient;
  const perClient = new Map<string, number>();
  let total = 0;
  server.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress ?? 'unknown';
    const mine = perClient.get(client) ?? 0;
    const cap = total >= maxTotal ? 'total' : mine >= maxPerClient ? 'per_client' : undefined;
    if (cap) {
      onRefused(cap);
      socket.destroy();
      return;
    }
    total++;
    perClient.set(client, mine + 1);
    socket.once('close', () => {
      total--;
      const left = (perClient.get(client) ?? 1) - 1;
      if (left > 0) perClient.set(client, left);
      else perClient.delete(client);
    });
  });
  return { open: () => total };
}
