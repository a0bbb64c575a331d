// A training run killed with SIGKILL at seeded-random moments and resumed each time ends with the same checkpoint
// bytes as a run that was never interrupted, through the real `wgseg` command (bin/wgseg.js and its child process).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { seededRandom } from '../src/train/synthetic.ts';

const bin = resolve('bin/wgseg.js');
const dir = mkdtempSync(join(tmpdir(), 'wgseg-kill-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const STEPS = 40;
const data = join(dir, 'data');
const config = join(dir, 'config.json');
const train = (out: string) => [
  'train', '--model', 'rdcnet', '--preset', 'small', '--data', data, '--out', out, '--config', config,
  '--steps', String(STEPS), '--batch', '2', '--seed', '7', '--no-tune',
];

interface Session {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** When a child gets SIGKILL: some milliseconds from now, or as soon as a temporary file appears in a run folder (mid-save). */
type KillAt = { ms: number } | { saving: string };

/** `wgseg ARGS` in a child process; `kill`, when given, sees the stderr so far at each chunk and says when to kill it, or null. */
function wgseg(args: string[], kill?: (stderr: string) => KillAt | null): Promise<Session> {
  // stdout ignored: a pipe would stay open as long as the trainer (the child's child, which inherits it) lives.
  const child = spawn(process.execPath, [bin, ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let armed = false;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
    const at = kill && !armed ? kill(stderr) : null;
    if (at === null) return;
    armed = true;
    if ('ms' in at) setTimeout(() => child.kill('SIGKILL'), at.ms);
    else watcher = watch(at.saving, (_, name) => name?.endsWith('.tmp') && child.kill('SIGKILL'));
  });
  let watcher: ReturnType<typeof watch> | undefined;
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('close', (code, signal) => (watcher?.close(), done({ code, signal, stderr })));
  });
}

/** Processes (Linux: /proc) whose command line names `out`: a trainer left running after its parent was killed. */
function trainersOf(out: string): number[] {
  if (!existsSync('/proc/self/cmdline')) return [];
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p) && p !== String(process.pid)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(out);
    } catch {
      return false; // ended while listed
    }
  }).map(Number);
}

const savedStep = (out: string): number | null => (existsSync(join(out, 'state.json')) ? JSON.parse(readFileSync(join(out, 'state.json'), 'utf8')).step : null);
const files = ['best.safetensors', 'config.json', 'last.safetensors', 'optimizer.safetensors', 'state.json'];

beforeAll(async () => {
  const synth = await wgseg(['synth', '--out', data, '--size', '32,32', '--train', '4', '--val', '1', '--test', '1', '--seed', '3']);
  expect(synth.code).toBe(0);
  // A checkpoint every 5 steps, validation (and the best checkpoint) every 20: a kill lands before, during or between saves.
  writeFileSync(config, JSON.stringify({ train: { logEvery: 1, saveEvery: 5, validateEvery: 20, lr: 0.01 }, data: { patchSize: [16, 16] } }));
});

it('a run killed (SIGKILL) at random moments and resumed each time writes the bytes of an uninterrupted run', async () => {
  const reference = join(dir, 'reference');
  const killed = join(dir, 'killed');
  const uninterrupted = wgseg(train(reference));
  const random = seededRandom(2026);
  const sessions: { from: number; at: KillAt; killed: boolean; saved: number | null; temporaries: number }[] = [];

  // Killed before its first step ends: no checkpoint yet, so there is nothing to resume; the run starts again.
  const first = await wgseg(train(killed), (text) => (text.includes('training rdcnet') ? { ms: 0 } : null));
  expect(first.signal).toBe('SIGKILL');
  expect(savedStep(killed)).toBe(null);
  expect(existsSync(join(killed, 'config.json'))).toBe(true);
  const nothing = await wgseg(['train', '--out', killed, '--resume']);
  expect(nothing.code).toBe(2);
  expect(nothing.stderr).toContain(`--resume: ${killed} has no run to resume (config.json and state.json)`);

  // Then killed a random 0–3 s after a session's first step (its pipelines compiled), or the second time as it writes
  // its next checkpoint, and resumed after each kill until three kills have landed; the last session runs to the end.
  let landed = 0;
  for (let session = 0; ; session++) {
    const from = savedStep(killed);
    const args = from === null ? train(killed) : ['train', '--out', killed, '--resume'];
    const delay = Math.floor(random() * 3000);
    const at: KillAt = landed === 1 ? { saving: killed } : { ms: delay };
    const s = await wgseg(args, landed < 3 ? (text) => (/step \d+\/\d+/.test(text) ? at : null) : undefined);
    expect(s.stderr).not.toMatch(/wgseg train:|Error/);
    expect(s.stderr).toContain(`from step ${from ?? 0} of ${STEPS}`);
    // bin/wgseg.js's child, which does the training, dies with it: nothing goes on writing the run folder.
    for (let wait = 0; wait < 20 && trainersOf(killed).length > 0; wait++) await new Promise((r) => setTimeout(r, 100));
    expect(trainersOf(killed)).toEqual([]);
    const temporaries = readdirSync(killed).filter((n) => n.endsWith('.tmp')).length;
    sessions.push({ from: from ?? 0, at, killed: s.signal === 'SIGKILL', saved: savedStep(killed), temporaries });
    if (s.signal === 'SIGKILL') {
      landed++;
      expect(savedStep(killed) ?? 0).toBeGreaterThanOrEqual(from ?? 0);
      continue;
    }
    expect(s.code).toBe(0);
    break;
  }
  expect(landed).toBe(3);

  const whole = await uninterrupted;
  expect(whole.code).toBe(0);
  // No temporary files left, the ones a kill during a save leaves included (the next write of those files removes them).
  for (const run of [reference, killed]) expect(readdirSync(run).sort(), `${run} (sessions ${JSON.stringify(sessions)})`).toEqual(files);
  for (const file of ['last.safetensors', 'optimizer.safetensors', 'best.safetensors']) {
    expect(Buffer.compare(readFileSync(join(killed, file)), readFileSync(join(reference, file))), `${file} (sessions ${JSON.stringify(sessions)})`).toBe(0);
  }
  const state = (run: string) => ({ ...JSON.parse(readFileSync(join(run, 'state.json'), 'utf8')), seconds: 0 });
  expect(state(killed)).toEqual(state(reference));
});
