// Runs the wgseg command's main() in this process, on the shared test engine, and captures what it prints; writes the
// tiny dataset folders the CLI tests run on.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../src/cli/main.ts';
import type { ModelRegistry } from '../../src/cli/run.ts';
import { syntheticBlobs } from '../../src/index.ts';
import { writeLabels, writePng } from '../../src/train/io-node.ts';
import { tinyFactory } from './fake-model.ts';
import { testEngine } from './engine.ts';

/** The tiny model (test/support/fake-model.ts) as the only model, with one preset. */
export const tinyRegistry: ModelRegistry = { factories: { tiny: tinyFactory }, presets: { tiny: { default: { channels: 1, seed: 1, dropout: 0.1 } } } };

/** A dataset folder: `counts` images per split, `size`² (default 24²) grey PNG images of 3 blobs with TIFF masks. */
export async function dataset(dir: string, counts: Record<string, number>, size = 24): Promise<string> {
  let seed = 1;
  for (const [split, n] of Object.entries(counts)) {
    for (const sub of ['images', 'masks']) mkdirSync(join(dir, split, sub), { recursive: true });
    for (let i = 0; i < n; i++) {
      const r = size / 24;
      const s = syntheticBlobs({ height: size, width: size, blobs: 3, radius: [3 * r, 5 * r], seed: seed++ });
      const grey = Uint8Array.from(s.image, (v) => Math.max(0, Math.min(255, Math.round(v * 255))));
      await writePng(join(dir, split, 'images', `img${i}.png`), { data: grey, width: size, height: size, channels: 1 });
      await writeLabels(join(dir, split, 'masks', `img${i}.tif`), { data: s.labels, shape: [size, size], spacing: [1, 1] });
    }
  }
  return dir;
}

/** A writable stream that keeps what is written to it. */
export function sink() {
  let text = '';
  const stream = new Writable({ write: (chunk, _enc, done) => ((text += chunk), done()) });
  return { stream, text: () => text };
}

/** `wgseg ARGV` with the given model registry: its exit code, stdout and stderr (a 200-column terminal with `tty`). */
export async function runMain(argv: string[], registry: ModelRegistry, { tty = false } = {}) {
  const e = await testEngine();
  const [stdout, stderr] = [sink(), sink()];
  if (tty) Object.assign(stderr.stream, { isTTY: true, columns: 200 });
  const code = await main(argv, { stdout: stdout.stream, stderr: stderr.stream, registry, engine: async () => e });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}
