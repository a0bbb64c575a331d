// wgseg import on files Debian's PyTorch wrote (scripts/make-embedseg-fixture.py, test/fixtures/embedseg-import/): the
// checkpoint reader (ZIP archive, pickle, strided tensors of several dtypes, the legacy format, safetensors), EmbedSeg's
// network inferred from a checkpoint's shapes with outputs equal to PyTorch's on a fixed input, and the command: import
// then predict, and bad inputs that each give one line, exit code 2 and no run folder.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { registry } from '../src/models/registry.ts';
import { embedsegPresets } from '../src/models/embedseg.ts';
import { decodeSafetensors, encodeModel, encodeSafetensors, readSafetensors, type HostTensor } from '../src/train/checkpoint.ts';
import { importEmbedSeg, readEmbedSeg } from '../src/train/embedseg-import.ts';
import { readLabels, writePng } from '../src/train/io-node.ts';
import { readPyTorch, readStateDict, TorchTensor } from '../src/train/pytorch.ts';
import { buildModel, loadModel, type RunConfig } from '../src/train/run.ts';
import { syntheticBlobs } from '../src/train/synthetic.ts';
import { runMain } from './support/cli.ts';
import { testEngine } from './support/engine.ts';

const fixtures = resolve('test/fixtures/embedseg-import');
const fixture = (name: string) => join(fixtures, name);
const read = (name: string) => new Uint8Array(readFileSync(fixture(name)));

const made: string[] = [];
const tmp = () => {
  made.push(mkdtempSync(join(tmpdir(), 'wgseg-import-')));
  return made.at(-1)!;
};
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const values = (t: unknown) => Array.from((t as TorchTensor).float32('test'));

describe('PyTorch checkpoints', () => {
  it('reads strided views, storage offsets, every dtype and the Python values beside them', () => {
    const saved = readPyTorch(read('tensors.pth'), 'tensors.pth') as Map<string, unknown>;
    const a = Array.from({ length: 12 }, (_, i) => i);
    const transposed = saved.get('transposed') as TorchTensor;
    expect(transposed).toMatchObject({ dtype: 'float32', shape: [4, 3], stride: [1, 4], storageOffset: 0 });
    expect(values(transposed)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(saved.get('offset')).toMatchObject({ shape: [2, 2], stride: [4, 1], storageOffset: 6 });
    expect(values(saved.get('offset'))).toEqual([6, 7, 10, 11]);
    expect(values(saved.get('half'))).toEqual(a.map((v) => v / 4));
    expect(values(saved.get('double'))).toEqual(a.map((v) => v - 5.5));
    expect(values(saved.get('long'))).toEqual([-3, 0, 2 ** 40]);
    expect(values(saved.get('bool'))).toEqual([1, 0, 1]);
    expect([...saved.values()].slice(1, 6).map((t) => (t as TorchTensor).dtype)).toEqual(['float32', 'float16', 'float64', 'int64', 'bool']);
    expect([saved.get('step'), saved.get('lr'), saved.get('name')]).toEqual([12, 0.5, 'embedseg']);
  });

  it('reads the legacy (pre-1.6) format', () => {
    const saved = readPyTorch(read('legacy.pth'), 'legacy.pth') as Map<string, unknown>;
    expect(values(saved.get('transposed'))).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(saved.get('double')).toMatchObject({ dtype: 'float64', shape: [4], storageOffset: 4 });
    expect(values(saved.get('double'))).toEqual([4, 5, 6, 7]);
  });

  it("finds the state dict of EmbedSeg's training checkpoint under model_state_dict, without DataParallel's prefix", () => {
    const checkpoint = readPyTorch(read('model.pth'), 'model.pth') as Map<string, unknown>;
    expect([...checkpoint.keys()]).toEqual(['epoch', 'best_iou', 'model_state_dict', 'optim_state_dict', 'logger_data']);
    expect((checkpoint.get('logger_data') as Map<string, number[]>).get('iou')).toEqual([0.1, 0.2, 0.25, 0.2]);
    const state = readStateDict(read('model.pth'), 'model.pth');
    expect(state.size).toBe(433);
    expect(state.get('encoder.initial_block.conv.weight')?.shape).toEqual([2, 1, 3, 3]);
    expect(state.get('encoder.layers.14.conv1x3_2.weight')?.shape).toEqual([8, 8, 1, 3]);
    expect(state.get('decoders.1.output_conv.weight')?.shape).toEqual([3, 1, 2, 2]);
    expect(state.get('encoder.output_conv.weight')?.shape).toEqual([5, 8, 1, 1]);
    const counter = state.get('decoders.0.layers.5.bn2.num_batches_tracked')!;
    expect([counter.dtype, counter.shape, values(counter)]).toEqual(['int64', [], [7]]);
    // The safetensors copy Python wrote holds the same names and values.
    const copy = readStateDict(read('model.safetensors'), 'model.safetensors');
    expect([...copy.keys()].sort()).toEqual([...state.keys()].sort());
    for (const [name, t] of state) expect(values(copy.get(name)), name).toEqual(values(t));
  });

  it('names what is wrong with a file that is not a checkpoint it can read', () => {
    const model = read('model.pth');
    const broken = (bytes: Uint8Array) => () => readStateDict(bytes, 'x.pth');
    expect(broken(model.subarray(0, 5000))).toThrow('x.pth: ZIP archive has no end-of-central-directory record (the file is truncated or not a ZIP archive)');
    expect(broken(new TextEncoder().encode('{"weights": [1, 2, 3]}'))).toThrow('x.pth: not a PyTorch checkpoint');
    expect(broken(read('deflated.pth'))).toThrow(
      'x.pth: ZIP archive entry tensors/data.pkl is compressed (method 8); only stored entries are read, as torch.save writes them',
    );
    const damaged = model.slice();
    damaged[80_000] ^= 0x40;
    expect(broken(damaged)).toThrow(/^x\.pth: ZIP archive entry model\/data\/\d+ fails its CRC-32 check/);
    expect(broken(read('tensors.pth'))).toThrow(
      'x.pth: holds a dict (its keys: transposed, offset, half, double, long, bool, step, lr), neither a state dict of tensors nor a dict with one under model_state_dict, state_dict, model',
    );
    const legacy = read('legacy.pth');
    expect(broken(legacy.subarray(0, legacy.length - 10))).toThrow(/^x\.pth: ends inside storage \d+ \(truncated\?\)$/);
  });
});

describe('EmbedSeg import', () => {
  it("infers the reference's network from the shapes; its outputs on the fixed input match PyTorch's within 1e-4", async () => {
    const e = await testEngine();
    const checkpoint = readEmbedSeg(read('model.pth'), 'model.pth');
    expect(checkpoint.network).toEqual({
      ndim: 2, inChannels: 1, outChannels: [4, 1], widths: [3, 6, 8], encoderBlocks: 5, dilations: [2, 4, 8, 16], dilatedRepeats: 2, decoderBlocks: 2,
    });
    const { run, weights, ignored } = importEmbedSeg(e, registry, checkpoint, { from: '/models/model.pth', what: 'model.pth' });
    expect(ignored.filter((n) => !n.endsWith('.num_batches_tracked'))).toEqual(['encoder.output_conv.weight', 'encoder.output_conv.bias']);
    expect(run).toMatchObject({
      format: 'wgseg-run/1',
      model: { kind: 'embedseg', preset: null, config: { widths: [3, 6, 8], bnEps: 1e-3, seedThreshold: 0.9, fgThreshold: 0.5, minMaskSum: 36, tta: false } },
      normalization: { method: 'percentile', pLow: 1, pHigh: 99.8 },
      data: { spacing: null, trainSpacing: [1, 1] },
      imported: { from: '/models/model.pth', method: 'embedseg' },
    });

    const model = loadModel(e, registry, run, weights, 'best.safetensors');
    try {
      const reference = decodeSafetensors(read('reference.safetensors')).tensors;
      const input = reference.get('input')!;
      const expected = reference.get('output')!.data;
      const scope = e.beginScope();
      const got = await model.infer(e.tensor(input.data, input.shape)).data();
      scope.end();
      expect(got.length).toBe(expected.length);
      let maxError = 0;
      for (let i = 0; i < got.length; i++) maxError = Math.max(maxError, Math.abs(got[i] - expected[i]));
      console.log(`EmbedSeg import parity: max |wgseg − PyTorch| = ${maxError.toExponential(2)} over ${got.length} outputs`);
      expect(maxError).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }

    // The safetensors copy makes the same weights file.
    const again = importEmbedSeg(e, registry, readEmbedSeg(read('model.safetensors'), 'model.safetensors'), { from: '/models/model.safetensors', what: 'model.safetensors' });
    expect(Buffer.from(again.weights).equals(Buffer.from(weights))).toBe(true);
  });

  it("infers a 3D network (wgseg's own weights files use the reference's names too)", async () => {
    const e = await testEngine();
    const network = { ndim: 3, inChannels: 2, outChannels: [6, 1], widths: [3, 4, 6], encoderBlocks: 1, dilations: [2, 4, 8, 16], dilatedRepeats: 1, decoderBlocks: 1 };
    const model = buildModel(e, registry, 'embedseg', { ...embedsegPresets['paper-3d'], ...network, seed: 3 });
    try {
      const file = await encodeModel(model);
      const checkpoint = readEmbedSeg(file, 'wgseg.safetensors');
      expect(checkpoint.network).toEqual(network);
      expect(checkpoint.state.has('encoder.layers.3.conv1x1x3_2.weight')).toBe(true);
      const { run, weights } = importEmbedSeg(e, registry, checkpoint, { from: 'wgseg.safetensors', what: 'wgseg.safetensors', spacing: [2, 1, 1] });
      expect(run.data).toMatchObject({ spacing: [2, 1, 1], trainSpacing: [2, 1, 1] });
      expect(decodeSafetensors(weights).tensors).toEqual(decodeSafetensors(file).tensors);
    } finally {
      model.dispose();
    }
  });
});

/** model.safetensors without its batch-norm counters (I64, which encodeSafetensors does not write), changed by `edit`. */
function editedStateDict(edit: (tensors: Map<string, HostTensor>) => void): Uint8Array {
  const { entries } = readSafetensors(read('model.safetensors'));
  const tensors = new Map<string, HostTensor>();
  for (const [name, { dtype, shape, bytes }] of entries) if (dtype === 'F32') tensors.set(name, { shape, data: new Float32Array(bytes.buffer) });
  edit(tensors);
  return encodeSafetensors(tensors);
}

describe('wgseg import', () => {
  it('writes a run folder that predict labels images with', async () => {
    const dir = tmp();
    const out = join(dir, 'run');
    const r = await runMain(['import', '--from', 'embedseg', fixture('model.pth'), '--out', out], registry);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toMatchObject({ run: out, from: fixture('model.pth'), preset: null, network: { widths: [3, 6, 8] }, tensors: 382, ignored: 51 });
    expect(readdirSync(out).sort()).toEqual(['best.safetensors', 'config.json']);
    expect((JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as RunConfig).imported).toEqual({ from: fixture('model.pth'), method: 'embedseg' });

    const images = join(dir, 'images');
    mkdirSync(images);
    const s = syntheticBlobs({ height: 40, width: 56, blobs: 3, radius: [4, 7], seed: 5 });
    await writePng(join(images, 'cells.png'), { data: Uint8Array.from(s.image, (v) => Math.max(0, Math.min(255, Math.round(v * 255)))), width: 56, height: 40, channels: 1 });
    const labels = join(dir, 'labels');
    const p = await runMain(['predict', '--model', out, '--input', images, '--out', labels], registry);
    expect(p).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(p.stdout)).toMatchObject({ images: 1, weights: join(out, 'best.safetensors') });
    expect((await readLabels(join(labels, 'cells.tif'))).shape).toEqual([40, 56]);

    expect(await runMain(['import', '--from', 'embedseg', fixture('model.safetensors'), '--out', out], registry)).toMatchObject({
      code: 2, stdout: '', stderr: `wgseg import: --out: ${out} already holds a run (config.json); choose another folder\n`,
    });
  });

  it('refuses bad inputs with one line and exit code 2, writing nothing', async () => {
    const dir = tmp();
    const file = (name: string, bytes: Uint8Array) => {
      writeFileSync(join(dir, name), bytes);
      return join(dir, name);
    };
    const truncated = file('truncated.pth', read('model.pth').subarray(0, 120_000));
    const notZip = file('notes.pth', new TextEncoder().encode('these are not weights\n'));
    const missing = file('missing.safetensors', editedStateDict((t) => t.delete('decoders.1.layers.4.bn1.running_var')));
    const reshaped = file('reshaped.safetensors', editedStateDict((t) => t.set('decoders.0.layers.1.conv1x3_2.bias', { shape: [5], data: new Float32Array(5) })));
    const extra = file('extra.safetensors', editedStateDict((t) => t.set('encoder.attention.weight', { shape: [1], data: new Float32Array(1) })));
    const cases: [string[], string][] = [
      [[truncated], `${truncated}: ZIP archive has no end-of-central-directory record (the file is truncated or not a ZIP archive)`],
      [[notZip], `${notZip}: not a PyTorch checkpoint (neither the ZIP archive torch.save writes nor its legacy format) nor a safetensors file`],
      [[fixture('other.pth')], `${fixture('other.pth')}: not an EmbedSeg (BranchedERFNet) state dict: it has no encoder.initial_block.conv.weight (it begins 0.weight, 0.bias, 1.weight)`],
      [[missing], `${missing}: has no decoders.1.layers.4.bn1.running_var, which a 2D network with widths [3, 6, 8], 5 + 4×2 encoder blocks, 2 per decoder stage and outputs [4, 1] needs`],
      [[reshaped], `${reshaped}: decoders.0.layers.1.conv1x3_2.bias is [5]; a 2D network with widths [3, 6, 8], 5 + 4×2 encoder blocks, 2 per decoder stage and outputs [4, 1] needs [6]`],
      [[extra], `${extra}: encoder.attention.weight is not a tensor of a 2D network with widths [3, 6, 8], 5 + 4×2 encoder blocks, 2 per decoder stage and outputs [4, 1]`],
      [[join(dir, 'nowhere.pth')], `${join(dir, 'nowhere.pth')}: no such file`],
      [[fixture('model.pth'), '--spacing', '2,1,1'], `--spacing has 3 values; ${fixture('model.pth')} holds a 2D model`],
      [[], 'takes one model file, got none (see wgseg import --help)'],
    ];
    for (const [args, message] of cases) {
      const out = join(dir, 'run');
      const r = await runMain(['import', '--from', 'embedseg', ...args, '--out', out], registry);
      expect(r, args.join(' ')).toEqual({ code: 2, stdout: '', stderr: `wgseg import: ${message}\n` });
      expect(existsSync(out), args.join(' ')).toBe(false);
    }
    expect(await runMain(['import', '--from', 'stardist', fixture('model.pth'), '--out', join(dir, 'run')], registry)).toMatchObject({
      code: 2, stderr: 'wgseg import: --from stardist: import reads models of embedseg (see wgseg import --help)\n',
    });
  });

  it('has help, and the real command exits 2 on a bad file', async () => {
    const help = await runMain(['import', '--help'], registry);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^wgseg import --from embedseg MODEL --out RUN/);
    expect((await runMain(['--help'], registry)).stdout).toContain('wgseg import --from embedseg MODEL --out RUN');
    const out = join(tmp(), 'run');
    const r = spawnSync(process.execPath, [resolve('bin/wgseg.js'), 'import', '--from', 'embedseg', fixture('other.pth'), '--out', out], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^wgseg import: .*other\.pth: not an EmbedSeg \(BranchedERFNet\) state dict/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
  });
});
