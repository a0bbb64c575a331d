// Runs the wgseg command's main() in this process, on the shared test engine, and captures what it prints.
import { Writable } from 'node:stream';
import { main } from '../../src/cli/main.ts';
import type { ModelRegistry } from '../../src/cli/run.ts';
import { testEngine } from './engine.ts';

/** A writable stream that keeps what is written to it. */
export function sink() {
  let text = '';
  const stream = new Writable({ write: (chunk, _enc, done) => ((text += chunk), done()) });
  return { stream, text: () => text };
}

/** `wgseg ARGV` with the given model registry: its exit code, stdout and stderr. */
export async function runMain(argv: string[], registry: ModelRegistry) {
  const e = await testEngine();
  const [stdout, stderr] = [sink(), sink()];
  const code = await main(argv, { stdout: stdout.stream, stderr: stderr.stream, registry, engine: async () => e });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}
