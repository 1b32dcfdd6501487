// Output the kubectl way: tables with upper-case headers and columns padded by three spaces, ages like 5m or 3d, and
// -o json|yaml for scripts.
import { stringify } from 'yaml';

export type OutputFormat = 'table' | 'json' | 'yaml';

export function parseOutputFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === '' || value === 'table' || value === 'wide') return 'table';
  if (value === 'json' || value === 'yaml') return value;
  throw new UsageError(`unknown output format ${JSON.stringify(value)}: use -o json or -o yaml`);
}

/** A mistake in how the command was called (exit code 2). */
export class UsageError extends Error {}

/** A refusal or failure to report (exit code 1), already worded for people. */
export class PluginError extends Error {}

export function serialize(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value, { lineWidth: 0 });
}

/** Rows of cells under upper-case headers, left-aligned, as `kubectl get` prints them. Empty cells print <none>. */
export function table(headers: string[], rows: (string | number | undefined)[][]): string {
  const cells = rows.map((r) => headers.map((_, i) => (r[i] === undefined || r[i] === '' ? '<none>' : String(r[i]))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

/** kubectl's short age: 45s, 12m, 3h, 5d, 2y. */
export function age(from: string | Date | undefined, now: Date = new Date()): string {
  if (from === undefined) return '<unknown>';
  const seconds = Math.max(0, Math.floor((now.getTime() - new Date(from).getTime()) / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (days < 730) return `${days}d`;
  return `${Math.floor(days / 365)}y`;
}

/** Bytes as people read them: 512B, 7.0KiB, 1.5GiB. */
export function bytes(n: number | undefined): string | undefined {
  if (n === undefined) return undefined;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v}B` : `${v.toFixed(1)}${units[u]}`;
}

export function score(n: number | undefined): string | undefined {
  if (n === undefined) return undefined;
  return Number.isInteger(n) ? String(n) : n.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
}
