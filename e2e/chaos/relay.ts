// A loopback TCP relay that a scenario puts between a client and its server, to break the network between them
// the ways networks break without saying so:
// - cut(): every connection open now goes dead for good, as when a NAT entry or a middlebox state vanishes: bytes
//   are taken and dropped, nothing comes back, and no FIN or RST ever reaches either end. For `blackoutMs`
//   connections made afterwards are dead too; later ones are relayed.
// - partition() … heal(): nothing crosses while partitioned (bytes wait, new connections wait), and everything
//   resumes on heal, as TCP does once a partition ends; a client that gave up meanwhile has closed its side.
// TLS passes through untouched.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

interface Link {
  client: Socket;
  upstream?: Socket;
  /** Cut: bytes are dropped both ways, closes are not passed on. */
  dead: boolean;
  /** Partitioned: bytes wait. */
  held: Buffer[][];
}

export class TcpRelay {
  readonly links = new Set<Link>();
  /** Connections accepted, and when (Date.now()). */
  readonly accepted: number[] = [];
  private deadUntil = 0;
  private partitioned = false;
  private waiting: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpRelay> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const relay = new TcpRelay(server, (server.address() as { port: number }).port, target);
    server.on('connection', (s) => relay.accept(s));
    return relay;
  }

  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Connections accepted since `t` (Date.now()). */
  acceptedSince(t: number): number {
    return this.accepted.filter((a) => a >= t).length;
  }

  private accept(client: Socket): void {
    this.accepted.push(Date.now());
    const link: Link = { client, dead: Date.now() < this.deadUntil, held: [[], []] };
    this.links.add(link);
    client.on('error', () => undefined);
    const connect = () => {
      if (client.destroyed) return this.links.delete(link);
      const upstream = createConnection(this.target);
      link.upstream = upstream;
      upstream.on('error', () => undefined);
      client.on('data', (d: Buffer) => this.forward(link, d, 0));
      upstream.on('data', (d: Buffer) => this.forward(link, d, 1));
      // The server's close reaches the client only over a live path; a cut never tells anyone anything.
      upstream.on('close', () => {
        if (!link.dead) client.destroy();
      });
      client.on('close', () => {
        upstream.destroy();
        this.links.delete(link);
      });
    };
    if (this.partitioned) this.waiting.push(connect);
    else connect();
  }

  /** dir 0: client → server, 1: server → client. */
  private forward(link: Link, data: Buffer, dir: 0 | 1): void {
    if (link.dead) return;
    if (this.partitioned) {
      link.held[dir]!.push(data);
      return;
    }
    (dir === 0 ? link.upstream : link.client)?.write(data);
  }

  /** Every open connection goes dead for good; so does every new one for `blackoutMs`. */
  cut(blackoutMs = 0): number {
    for (const l of this.links) l.dead = true;
    this.deadUntil = Date.now() + blackoutMs;
    return this.links.size;
  }

  /** Nothing crosses until heal(). */
  partition(): void {
    this.partitioned = true;
  }

  heal(): void {
    this.partitioned = false;
    for (const l of this.links) {
      const [up, down] = l.held;
      l.held = [[], []];
      for (const d of up!) l.upstream?.write(d);
      for (const d of down!) l.client.write(d);
    }
    for (const connect of this.waiting.splice(0)) connect();
  }

  async stop(): Promise<void> {
    for (const l of this.links) {
      l.client.destroy();
      l.upstream?.destroy();
    }
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
