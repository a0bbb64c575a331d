// The GPU device lost in the middle of `wgseg train` and `wgseg predict` (simulated with GPUDevice.destroy(), which
// resolves GPUDevice.lost as a driver reset does): one line naming the reason, exit code 1, the last checkpoint whole
// and resumable with the command the line gives, the images finished before it written. Each command gets an engine
// of its own, since a lost device stays lost.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.ts';
import type { ModelRegistry } from '../src/models/model.ts';
import { createNodeEngine } from '../src/node.ts';
import { decodeSafetensors } from '../src/train/checkpoint.ts';
import type { Engine, Tensor, TrainBatch } from '../src/index.ts';
import { dataset, sink, tinyRegistry } from './support/cli.ts';
import { TinyModel, tinyFactory } from './support/fake-model.ts';

const made: string[] = [];
const tmp = () => {
  made.push(mkdtempSync(join(tmpdir(), 'wgseg-lost-')));
  return made.at(-1)!;
};
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** `wgseg ARGV` on a fresh engine (main destroys it at the end). */
async function wgseg(argv: string[], registry: ModelRegistry = tinyRegistry) {
  const e = await createNodeEngine();
  const [stdout, stderr] = [sink(), sink()];
  const code = await main(argv, { stdout: stdout.stream, stderr: stderr.stream, registry, engine: async () => e });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** The tiny model, whose device is destroyed at the `at`-th call of its loss (training) or infer (prediction). */
function losingDevice(at: { loss?: number; infer?: number }): ModelRegistry {
  const calls = { loss: 0, infer: 0 };
  return {
    ...tinyRegistry,
    factories: {
      tiny: (e: Engine, config: Record<string, unknown>) => {
        const model = tinyFactory(e, config) as TinyModel;
        const [loss, infer] = [model.loss.bind(model), model.infer.bind(model)];
        model.loss = (batch: TrainBatch, step: number) => {
          if (++calls.loss === at.loss) e.device.destroy();
          return loss(batch, step);
        };
        model.infer = (images: Tensor) => {
          if (++calls.infer === at.infer) e.device.destroy();
          return infer(images);
        };
        return model;
      },
    },
  };
}

let data: string;
let config: string;
beforeAll(async () => {
  data = await dataset(tmp(), { train: 3, val: 1, test: 3 });
  config = join(tmp(), 'config.json');
  writeFileSync(config, JSON.stringify({ train: { logEvery: 1, validateEvery: 2, saveEvery: 1, lr: 0.01 }, data: { patchSize: [16, 16] } }));
});

const lostLine = 'the GPU device was lost (destroyed: device was destroyed)';

describe('the GPU device lost during wgseg train', () => {
  it('stops with one line: the reason, the last checkpoint, the command that resumes; which resumes', async () => {
    const run = join(tmp(), 'run');
    const trainArgs = ['train', '--model', 'tiny', '--data', data, '--out', run, '--config', config, '--steps', '6', '--no-tune'];
    // Steps 1 to 3 are saved (saveEvery 1); the device goes in step 4.
    const r = await wgseg(trainArgs, losingDevice({ loss: 4 }));
    expect(r).toMatchObject({ code: 1, stdout: '' });
    const resume = `wgseg train --out ${run} --resume`;
    expect(r.stderr.split('\n').filter((line) => line.startsWith('wgseg train:'))).toEqual([
      `wgseg train: ${lostLine}; the checkpoint of step 3 is kept in ${join(run, 'last.safetensors')}; continue with: ${resume}`,
    ]);
    expect(r.stderr).not.toMatch(/\n\s+at |WGSEG_DEBUG/);
    // Whole files, no temporary ones: the checkpoint, its optimizer state and state.json all of step 3.
    expect(readdirSync(run).sort()).toEqual(['best.safetensors', 'config.json', 'last.safetensors', 'optimizer.safetensors', 'state.json']);
    expect(decodeSafetensors(readFileSync(join(run, 'last.safetensors'))).metadata.step).toBe('3');
    expect(JSON.parse(readFileSync(join(run, 'state.json'), 'utf8')).step).toBe(3);

    const resumed = await wgseg(resume.split(' ').slice(1));
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ reason: 'done', step: 6 });
  });

  it('before the first checkpoint, says there is none', async () => {
    const run = join(tmp(), 'run');
    const r = await wgseg(['train', '--model', 'tiny', '--data', data, '--out', run, '--config', config, '--steps', '6', '--no-tune'], losingDevice({ loss: 1 }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`wgseg train: ${lostLine}; no checkpoint was saved yet: start the run again\n`);
  });
});

describe('the GPU device lost during wgseg predict', () => {
  let run: string;
  let input: string;
  beforeAll(async () => {
    run = join(tmp(), 'run');
    expect((await wgseg(['train', '--model', 'tiny', '--data', data, '--out', run, '--config', config, '--steps', '2', '--no-tune'])).code).toBe(0);
    input = join(tmp(), 'input');
    mkdirSync(input);
    for (const file of readdirSync(join(data, 'test', 'images'))) copyFileSync(join(data, 'test', 'images', file), join(input, file));
  });

  it('stops at the image it was predicting with one line, keeping the images finished before it', async () => {
    const out = join(tmp(), 'labels');
    const r = await wgseg(['predict', '--model', run, '--input', input, '--out', out], losingDevice({ infer: 2 }));
    expect(r).toMatchObject({
      code: 1, stdout: '',
      stderr: `wgseg predict: ${lostLine} while predicting ${join(input, 'img1.png')}; 1 image(s) written to ${out}; rerun with --skip-existing to predict the others\n`,
    });
    expect(readdirSync(out)).toEqual(['img0.tif']);
  });

  it('with --strict, writes nothing', async () => {
    const parent = tmp();
    const r = await wgseg(['predict', '--model', run, '--input', input, '--out', join(parent, 'labels'), '--strict'], losingDevice({ infer: 2 }));
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: `wgseg predict: ${lostLine} while predicting ${join(input, 'img1.png')}; nothing was written (--strict)\n` });
    expect(readdirSync(parent)).toEqual([]);
  });
});
