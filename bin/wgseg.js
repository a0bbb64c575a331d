#!/usr/bin/env node
// The `wgseg` command. Its command line runs in a child process, whose stderr this one passes on without Dawn's
// informational warnings: Dawn prints those with fprintf from native code when it first looks for adapters and clamps
// a limit the driver reports (lavapipe and RADV offer 1000000 dynamic buffers per pipeline layout, Dawn keeps 16). No
// Dawn toggle or requested limit avoids them, and the process that prints them cannot intercept a native write to its
// own stderr. Every other line, Dawn's errors included, passes unchanged; stdin and stdout are the child's own.
// The child runs the built modules in dist/ from an installed package, and in a checkout (src/ beside bin/) the
// TypeScript sources through tsx, resolved from this package (so it works from any working directory and through
// `npx wgseg`), never a stale build. This first process is plain JavaScript and loads neither.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dawnWarningFilter } from './dawn-warnings.js';

/** Set in the child: the columns of the terminal the parent's stderr is, or empty when it is no terminal. */
const CHILD = 'WGSEG_CHILD_STDERR_COLUMNS';
const argv = process.argv.slice(2);
const columns = process.env[CHILD];

if (columns === undefined) {
  process.exitCode = await runChild();
} else {
  delete process.env[CHILD];
  // The parent gone (SIGKILL, which it cannot pass on, or a crash) closes the IPC channel: this process ends too, so
  // no orphan goes on writing the run folder that a resumed run writes. The channel alone keeps nothing alive.
  if (process.channel) {
    process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
    process.channel.unref();
  }
  const checkout = existsSync(new URL('../src/cli/main.ts', import.meta.url));
  if (checkout) (await import('tsx/esm/api')).register();
  const { main } = await import(checkout ? '../src/cli/main.ts' : '../dist/cli/main.js');
  // The progress bar draws on a terminal: the parent's stderr is the terminal this pipe ends in.
  const stderr = columns === '' ? process.stderr : Object.assign(process.stderr, { isTTY: true, columns: Number(columns) });
  process.exitCode = await main(argv, { stderr });
}

/** Runs this script again as the child, filtering its stderr; resolves to its exit code. */
function runChild() {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...argv], {
    stdio: ['inherit', 'inherit', 'pipe', 'ipc'],
    env: { ...process.env, [CHILD]: process.stderr.isTTY ? String(process.stderr.columns) : '' },
  });
  const filter = dawnWarningFilter((text) => process.stderr.write(text));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => filter.push(chunk));
  // A terminal's Ctrl-C reaches both processes; a signal sent to this one alone is passed on. Either way this one
  // waits for the child, then ends the way it did.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const forward = (signal) => void child.kill(signal);
  for (const s of signals) process.on(s, forward);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      filter.end();
      for (const s of signals) process.off(s, forward);
      if (signal) process.kill(process.pid, signal);
      resolve(code ?? 1);
    });
  });
}
