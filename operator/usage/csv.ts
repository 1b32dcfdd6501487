// The usage export as CSV (RFC 4180): one row per UTC day and experiment, with a header row.
import { hours, round6, sortDaily, type DailyRow } from './usage.ts';

export const USAGE_CSV_HEADER = ['date', 'namespace', 'class', 'experiment', 'node_hours', 'gpu_hours', 'credits', 'includes_running_attempt'] as const;

/**
 * One CSV field: quoted when it holds a delimiter, quote, line break or edge spaces, with quotes doubled. A text
 * field that a spreadsheet would run as a formula (= + - @, tab, CR first) gets a leading apostrophe (OWASP's
 * advice against CSV injection); numbers are written as numbers.
 */
export function csvField(v: string | number | boolean): string {
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function usageCsv(daily: readonly DailyRow[]): string {
  const lines = [USAGE_CSV_HEADER.join(',')];
  for (const d of sortDaily([...daily])) {
    lines.push(
      [d.date, d.namespace, d.class, d.experiment, hours(d.nodeSeconds), hours(d.gpuSeconds), round6(d.credits), d.live].map(csvField).join(','),
    );
  }
  // RFC 4180 ends records with CRLF.
  return lines.join('\r\n') + '\r\n';
}
