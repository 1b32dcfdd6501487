import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Bytes of a checkpoint file, or of everything under a checkpoint folder. */
export function checkpointSize(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const entry of readdirSync(path, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}
