// A TCP forwarder, run as its own process by the real node: it listens on the host end of the node's veth and
// relays each connection to the API server on 127.0.0.1. The API server keeps its single loopback bind (so
// nothing on the machine's real interfaces can reach it) and the node's namespace gets one address to talk to.
// TLS passes through untouched; clients check the API server's certificate by name (tls-server-name).
//
//   node --import tsx e2e/realnode/forward.ts <listen-ip> <listen-port> <target-port>
import { createConnection, createServer } from 'node:net';

const [listenIp, listenPort, targetPort] = process.argv.slice(2);
if (!listenIp || !listenPort || !targetPort) {
  console.error('usage: forward.ts <listen-ip> <listen-port> <target-port>');
  process.exit(2);
}

const server = createServer((inbound) => {
  const outbound = createConnection({ host: '127.0.0.1', port: Number(targetPort) });
  inbound.pipe(outbound).pipe(inbound);
  const close = () => {
    inbound.destroy();
    outbound.destroy();
  };
  inbound.on('error', close);
  outbound.on('error', close);
  inbound.on('close', close);
  outbound.on('close', close);
});
server.on('error', (err) => {
  console.error(`forward ${listenIp}:${listenPort} -> 127.0.0.1:${targetPort}: ${err.message}`);
  process.exit(1);
});
server.listen(Number(listenPort), listenIp, () => {
  console.log(`forwarding ${listenIp}:${listenPort} -> 127.0.0.1:${targetPort}`);
});
process.on('SIGTERM', () => process.exit(0));
