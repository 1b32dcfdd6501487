// Pod IPs on loopback. Linux routes all of 127.0.0.0/8 to the lo interface, so every address in the range can be
// bound without configuring anything: each pod gets its own 127.x.y.z and a server in one pod listening on its
// pod IP does not collide with the same port in another pod.
//
// Addresses are machine-wide, while nodes (and clusters, and test files run in parallel) are many: with a claim
// directory, an address is taken by creating a file named after it (O_EXCL), which records the owning process;
// a claim whose process is gone is taken over.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { identify, isAlive, type ProcIdentity } from './proc.ts';

export const defaultPodCidr = '127.200.0.0/16';

function toInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`${JSON.stringify(ip)} is not an IPv4 address`);
  }
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

function toIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export class LoopbackIpPool {
  private readonly first: number;
  private readonly last: number;
  private readonly byOwner = new Map<string, string>();
  private readonly used = new Set<number>();
  private next: number;
  private readonly claimDir?: string;
  private readonly me: ProcIdentity;

  /**
   * `cidr` must lie inside 127.0.0.0/8; its network and broadcast addresses and 127.0.0.1 are never handed out.
   * `claimDir` makes addresses unique across every pool on the machine that uses the same directory.
   */
  constructor(cidr: string = defaultPodCidr, opts: { claimDir?: string } = {}) {
    this.claimDir = opts.claimDir;
    if (this.claimDir) mkdirSync(this.claimDir, { recursive: true });
    this.me = identify(process.pid) ?? { pid: process.pid, startTicks: 0 };
    const [base, bitsText] = cidr.split('/');
    const bits = Number(bitsText);
    if (!base || !Number.isInteger(bits) || bits < 8 || bits > 30) {
      throw new Error(`pod CIDR ${JSON.stringify(cidr)} must look like 127.200.0.0/16 (prefix 8 to 30)`);
    }
    const mask = (~0 << (32 - bits)) >>> 0;
    const network = (toInt(base) & mask) >>> 0;
    if (network >>> 24 !== 127) throw new Error(`pod CIDR ${cidr} is not inside 127.0.0.0/8 (loopback)`);
    this.first = network + 1;
    this.last = network + (2 ** (32 - bits) - 2);
    this.next = this.first;
  }

  /** The owner's address, allocating one on first call. Addresses are handed out round-robin, so a released
   *  one is not reused at once (a late connection to an old pod must not reach a new one). */
  allocate(owner: string): string {
    const known = this.byOwner.get(owner);
    if (known) return known;
    const size = this.last - this.first + 1;
    for (let i = 0; i < size; i++) {
      const candidate = this.next;
      this.next = candidate >= this.last ? this.first : candidate + 1;
      const ip = toIp(candidate);
      if (this.used.has(candidate) || ip === '127.0.0.1' || !this.claim(ip)) continue;
      this.used.add(candidate);
      this.byOwner.set(owner, ip);
      return ip;
    }
    throw new Error(`no free pod IP left in ${toIp(this.first)}-${toIp(this.last)}`);
  }

  /** Takes back an address recorded earlier (after a restart of the node), if it is still free. */
  restore(owner: string, ip: string): void {
    let n: number;
    try {
      n = toInt(ip);
    } catch {
      return;
    }
    if (n < this.first || n > this.last || this.byOwner.has(owner) || this.used.has(n) || !this.claim(ip)) return;
    this.used.add(n);
    this.byOwner.set(owner, ip);
  }

  release(owner: string): void {
    const ip = this.byOwner.get(owner);
    if (!ip) return;
    this.byOwner.delete(owner);
    this.used.delete(toInt(ip));
    if (this.claimDir) rmSync(join(this.claimDir, ip), { force: true });
  }

  /** Gives back every address (the node stops). */
  releaseAll(): void {
    for (const owner of [...this.byOwner.keys()]) this.release(owner);
  }

  private claim(ip: string): boolean {
    if (!this.claimDir) return true;
    const file = join(this.claimDir, ip);
    const record = JSON.stringify(this.me);
    try {
      writeFileSync(file, record, { flag: 'wx' });
      return true;
    } catch {
      // Taken: by a live process (this one included: another node here), or left by one that is gone.
    }
    try {
      const holder = JSON.parse(readFileSync(file, 'utf8')) as ProcIdentity;
      if (isAlive(holder)) return false;
      // Two pools may race to take over the same stale claim; the one whose record is read back wins.
      writeFileSync(file, record);
      return readFileSync(file, 'utf8') === record;
    } catch {
      return false;
    }
  }

  get(owner: string): string | undefined {
    return this.byOwner.get(owner);
  }

  entries(): Record<string, string> {
    return Object.fromEntries(this.byOwner);
  }
}
