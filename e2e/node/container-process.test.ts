// Container processes for real: private mounts (overlay and bind layers), the chroot for new top-level paths,
// start errors, process groups and logs. Needs root and util-linux, as the local node itself does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerProcess, StartError } from './container-process.ts';
import { resolveUnder, type LaunchPlan, type MountSpec } from './mount-helper.ts';
import { readLog } from './log-file.ts';
import { identify, readStat } from './proc.ts';
import { reapNode } from './state-file.ts';
import { spawn } from 'node:child_process';

const tools = { unshare: '/usr/bin/unshare', setpriv: existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined };

describe('container processes', () => {
  let dir: string;
  let n = 0;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'arena-proc-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function run(script: string, opts: Partial<LaunchPlan> = {}): Promise<{ proc: ContainerProcess; logPath: string }> {
    const i = n++;
    const staging = join(dir, `stage-${i}`);
    mkdirSync(staging);
    const logPath = join(dir, `${i}.log`);
    const proc = await ContainerProcess.start({
      plan: {
        argv: [process.execPath, '-e', script],
        env: { PATH: '/usr/bin:/bin', MARK: 'm' },
        workingDir: '/',
        mounts: [],
        stagingDir: staging,
        ...opts,
      },
      planPath: join(dir, `${i}.json`),
      logPath,
      tools,
    });
    return { proc, logPath };
  }
  const output = async (logPath: string) => (await readLog(logPath, {})).text;

  const layerModes = ['overlay', 'bind'] as const;
  for (const layers of layerModes) {
    test(`volumes appear at new paths under existing and new top-level directories (${layers} layers)`, async () => {
      const vol = join(dir, `vol-${layers}`);
      mkdirSync(vol);
      writeFileSync(join(vol, 'f.txt'), 'volume data');
      const file = join(dir, `cfg-${layers}.yaml`);
      writeFileSync(file, 'k: v\n');
      const mounts: MountSpec[] = [
        { source: vol, target: `/etc/arena-${layers}/data`, readOnly: true, kind: 'dir' },
        { source: file, target: `/etc/arena-${layers}.yaml`, readOnly: true, kind: 'file' },
        { source: vol, target: `/arena-top-${layers}/v`, readOnly: false, kind: 'dir' },
      ];
      const script = `
        const fs = require('node:fs'), os = require('node:os');
        console.log(fs.readFileSync('/etc/arena-${layers}/data/f.txt', 'utf8'));
        console.log(fs.readFileSync('/etc/arena-${layers}.yaml', 'utf8').trim());
        fs.writeFileSync('/arena-top-${layers}/v/written', 'x');
        try { fs.writeFileSync('/etc/arena-${layers}/data/nope', 'x'); console.log('ro broken'); } catch (e) { console.log(e.code); }
        fs.writeFileSync('/etc/arena-${layers}-scratch', 'stays inside');
        console.log(fs.existsSync('/etc/passwd'), process.cwd(), os.hostname(), process.env.MARK);`;
      const { proc, logPath } = await run(script, { mounts, layers, workingDir: `/arena-top-${layers}/v`, hostname: `pod-${layers}` });
      const exit = await proc.exited;
      assert.equal(exit.exitCode, 0, await output(logPath));
      assert.equal(
        await output(logPath),
        `volume data\nk: v\nEROFS\ntrue /arena-top-${layers}/v pod-${layers} m\n`,
      );
      assert.equal(readFileSync(join(vol, 'written'), 'utf8'), 'x', 'writes to a volume reach its directory');
      for (const p of [`/etc/arena-${layers}`, `/etc/arena-${layers}.yaml`, `/etc/arena-${layers}-scratch`, `/arena-top-${layers}`]) {
        assert.equal(existsSync(p), false, `${p} appeared on the host`);
      }
    });
  }

  test('a command that does not exist is a StartError, not an exit code', async () => {
    await assert.rejects(run('', { argv: ['no-such-command-here'] }), (err: Error) => {
      assert.ok(err instanceof StartError);
      assert.match(err.message, /exec: "no-such-command-here": executable file not found in \$PATH/);
      return true;
    });
  });

  test('a mount over an existing path of the other kind is a StartError', async () => {
    await assert.rejects(
      run('', { mounts: [{ source: join(dir), target: '/etc/hostname', readOnly: true, kind: 'dir' }] }),
      /cannot mount a directory at \/etc\/hostname: it exists as a file/,
    );
  });

  test('signals reach the whole process group, and children die with the leader', async () => {
    const script = `
      process.on('SIGTERM', () => { console.log('leader got SIGTERM'); process.exit(7); });
      const { spawn } = require('node:child_process');
      const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      console.log('child ' + child.pid);
      setInterval(() => {}, 1000);`;
    const { proc, logPath } = await run(script);
    let childPid = 0;
    for (let i = 0; i < 100 && !childPid; i++) {
      await new Promise((r) => setTimeout(r, 50));
      childPid = Number(/child (\d+)/.exec(await output(logPath))?.[1] ?? 0);
    }
    assert.ok(childPid > 0);
    proc.signal('SIGTERM');
    const exit = await proc.exited;
    assert.equal(exit.exitCode, 7);
    assert.match(await output(logPath), /leader got SIGTERM/);
    // Gone, or a zombie waiting for init to reap it (it was reparented when its parent exited).
    const dead = () => ['Z', undefined].includes(readStat(childPid)?.state);
    for (let i = 0; i < 40 && !dead(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(dead(), 'the child outlived its container');
  });

  test('a process killed by a signal reports 128 + the signal number', async () => {
    const { proc } = await run('setInterval(() => {}, 1000)');
    proc.signal('SIGKILL');
    const exit = await proc.exited;
    assert.equal(exit.exitCode, 137);
    assert.equal(exit.signal, 9);
  });
});

describe('resolveUnder', () => {
  test('follows symlinks relative to the new root and keeps missing parts', () => {
    const root = mkdtempSync(join(tmpdir(), 'arena-root-'));
    try {
      mkdirSync(join(root, 'run'));
      mkdirSync(join(root, 'var'));
      writeFileSync(join(root, 'run', 'x'), '');
      // An absolute symlink, as /var/run -> /run is on most systems.
      symlinkSync('/run', join(root, 'var', 'run'));
      assert.equal(resolveUnder(root, '/var/run/secrets/token'), '/run/secrets/token');
      assert.equal(resolveUnder(root, '/var/./run/../run/x'), '/run/x');
      assert.equal(resolveUnder(root, '/new/dir'), '/new/dir');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('no processes outlive a crashed node', () => {
  test('the kernel kills a container when the node process dies (parent-death signal)', async () => {
    assert.ok(tools.setpriv, 'setpriv (util-linux) is installed');
    const dir = mkdtempSync(join(tmpdir(), 'arena-orphan-'));
    try {
      // A stand-in for a test process that starts a container and is then killed outright.
      const module = new URL('./container-process.ts', import.meta.url).href;
      const script = `
        const { ContainerProcess } = await import(${JSON.stringify(module)});
        const proc = await ContainerProcess.start({
          plan: { argv: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], env: {}, workingDir: '/', mounts: [],
            stagingDir: ${JSON.stringify(dir)} },
          planPath: ${JSON.stringify(join(dir, 'plan.json'))}, logPath: ${JSON.stringify(join(dir, 'log'))},
          tools: ${JSON.stringify(tools)},
        });
        console.log(proc.pid);
        setInterval(() => {}, 1000);`;
      const owner = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const pid = await new Promise<number>((resolve, reject) => {
        owner.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
        owner.once('exit', () => reject(new Error('the owner exited early')));
      });
      assert.equal(readStat(pid)?.state !== undefined, true);
      owner.kill('SIGKILL');
      const dead = () => ['Z', undefined].includes(readStat(pid)?.state);
      for (let i = 0; i < 100 && !dead(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(dead(), `container ${pid} outlived its node`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a later start reaps what a node with a dead owner recorded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arena-reap-'));
    try {
      const victim = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
      await new Promise((r) => victim.once('spawn', r));
      const id = identify(victim.pid!)!;
      // The owner: a process that has exited by now.
      const gone = spawn(process.execPath, ['-e', '']);
      const goneId = identify(gone.pid!) ?? { pid: gone.pid!, startTicks: 1 };
      await new Promise((r) => gone.once('exit', r));
      writeFileSync(
        join(dir, 'state.json'),
        JSON.stringify({ node: 'n', owner: goneId, processes: { x: { ...id, pod: 'ns/p', container: 'c' } } }),
      );
      assert.equal(reapNode(dir), 1);
      await new Promise((r) => victim.once('exit', r));
      assert.equal(victim.signalCode, 'SIGKILL');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
