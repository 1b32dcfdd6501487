// Run by reporter.test.ts inside a private mount namespace (unshare --mount) with a small tmpfs mounted at the
// buffer's folder: reports one checkpoint, fills the volume to the last byte, reports more, and prints where the
// buffer ended up. The tmpfs goes with the namespace when this process exits.
//   node --import tsx runtime/testing/reporter-on-full-volume.ts <tmpfs folder> <fallback buffer path>
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Reporter } from '../reporter.ts';

const [volume, fallback] = process.argv.slice(2);
if (!volume || !fallback) throw new Error('usage: reporter-on-full-volume.ts <tmpfs folder> <fallback buffer path>');
const at = () => new Date().toISOString();
const r = Reporter.open({
  bufferPath: join(volume, 'run-1', 'reports', 'attempt-1-worker-0.jsonl'),
  fallbackBufferPath: fallback,
  identity: { experiment: { namespace: 'ml', name: 'cartpole' }, run: 1, attempt: 1, worker: 0 },
});
r.report({ type: 'checkpoint', at: at(), step: 100, sizeBytes: 10, location: '/checkpoints/run-1/step-100' });
const before = r.bufferFile;
// Fill the volume: what is left goes to a filler file until the kernel answers ENOSPC.
const fd = openSync(join(volume, 'filler'), 'w');
let filled = 0;
try {
  for (;;) filled += writeSync(fd, Buffer.alloc(4096, 1));
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
} finally {
  closeSync(fd);
}
// The buffer file's last page may still have room: appends succeed until it is used up, then the kernel refuses.
let step = 100;
while (r.bufferFile === before && step < 100_000) {
  step += 100;
  r.report({ type: 'checkpoint', at: at(), step, sizeBytes: 10, location: `/checkpoints/run-1/step-${step}` });
}
r.report({ type: 'failed', at: at(), reason: 'VolumeFull', message: 'The checkpoint volume is full', retryable: true });
console.log(JSON.stringify({ before, after: r.bufferFile, filled, pending: r.pending, sequence: r.sequence }));
await r.close();
