// Checkpoints: the safetensors codec against hand-made reference bytes, model and Adam state round trips through the
// GPU, and atomic file writes that survive a crash mid-write.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Adam, decodeAdam, decodeModel, decodeSafetensors, encodeAdam, encodeModel, encodeSafetensors, mean, square, type HostTensor,
} from '../src/index.ts';
import { RunFolder, writeFileAtomic, writeFilesAtomic } from '../src/node.ts';
import { testEngine } from './support/engine.ts';
import { TinyModel } from './support/fake-model.ts';

/** What safetensors' reference writer produces for {a: [[1, 2], [3, 4]] f32, b: [-7] i32} with metadata {format: pt}. */
function referenceBytes(padHeader: boolean): Uint8Array {
  const header =
    '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},' +
    '"b":{"dtype":"I32","shape":[1],"data_offsets":[16,20]}}';
  expect(header.length).toBe(143);
  const padded = padHeader ? `${header} ` : header;
  const data = '0000803f000000400000404000008040' + 'f9ffffff';
  const length = [padded.length, 0, 0, 0, 0, 0, 0, 0];
  return new Uint8Array([...length, ...new TextEncoder().encode(padded), ...data.match(/../g)!.map((h) => parseInt(h, 16))]);
}

/** `bytes` with `from` replaced by the same-length `to` in the JSON header. */
function editHeader(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + length));
  expect(header).toContain(from);
  expect(to.length).toBe(from.length);
  const out = bytes.slice();
  out.set(new TextEncoder().encode(header.replace(from, to)), 8);
  return out;
}

const made: string[] = [];
const tmp = () => {
  made.push(mkdtempSync(join(tmpdir(), 'wgseg-ckpt-')));
  return made.at(-1)!;
};
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('safetensors', () => {
  it('writes exactly the reference layout: header padded to 8 bytes, names sorted, little-endian data', () => {
    const tensors = new Map<string, HostTensor>([
      ['b', { shape: [1], data: new Int32Array([-7]) }],
      ['a', { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }],
    ]);
    const bytes = encodeSafetensors(tensors, { format: 'pt' });
    expect([...bytes]).toEqual([...referenceBytes(true)]);
    expect((bytes.length - 20) % 8).toBe(0);
  });

  it('reads reference files, with or without header padding (unaligned data), also from a Node Buffer at an offset', () => {
    for (const pad of [true, false]) {
      const bytes = referenceBytes(pad);
      const buffer = Buffer.concat([Buffer.from('junk'), bytes]).subarray(4);
      expect(decodeSafetensors(buffer)).toEqual(decodeSafetensors(bytes));
      const { tensors, metadata } = decodeSafetensors(bytes);
      expect(metadata).toEqual({ format: 'pt' });
      expect(tensors.get('a')).toEqual({ shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) });
      expect(tensors.get('b')).toEqual({ shape: [1], data: new Int32Array([-7]) });
    }
  });

  it('round-trips f32, i32, u32, scalars, empty tensors and metadata', () => {
    const tensors = new Map<string, HostTensor>([
      ['w', { shape: [3, 1, 2], data: new Float32Array([0.1, -2, 3e-30, Infinity, -0, 7]) }],
      ['count', { shape: [], data: new Int32Array([42]) }],
      ['bits', { shape: [2], data: new Uint32Array([0xffffffff, 1]) }],
      ['none', { shape: [0, 4], data: new Float32Array(0) }],
    ]);
    const metadata = { kind: 'rdcnet', config: '{"groups":8}', note: 'ünïcode' };
    const back = decodeSafetensors(encodeSafetensors(tensors, metadata));
    expect(back.metadata).toEqual(metadata);
    expect(back.tensors).toEqual(tensors);
    expect(Object.is(back.tensors.get('w')!.data[4], -0)).toBe(true);
  });

  it('rejects broken files with a message naming the problem', () => {
    const good = referenceBytes(true);
    expect(() => decodeSafetensors(good.subarray(0, 5))).toThrow('too short for a header');
    expect(() => decodeSafetensors(good.subarray(0, 100))).toThrow('the header claims 144 bytes');
    expect(() => decodeSafetensors(good.subarray(0, good.length - 4))).toThrow('tensor "b" [1] I32 has data_offsets [16,20]');
    expect(() => decodeSafetensors(new Uint8Array([...good, 0, 0, 0, 0]))).toThrow('4 bytes after the last tensor');
    expect(() => decodeSafetensors(editHeader(good, '"I32","shape":[1]', '"F16","shape":[2]'))).toThrow(
      'tensor "b" has dtype F16; only F32, I32 and U32 are read',
    );
    expect(() => decodeSafetensors(editHeader(good, '"data_offsets":[16,20]', '"data_offsets":[12,16]'))).toThrow('overlaps or leaves a gap');
    expect(() => decodeSafetensors(editHeader(good, '{"format":"pt"}', '{"format":3}   '))).toThrow('metadata "format" is not a string');
    expect(() => decodeSafetensors(editHeader(good, '{"__metadata__"', '[1,2,3,4,5,6,7,'))).toThrow('the header is not JSON');
  });
});

describe('model and optimizer checkpoints', () => {
  it('a model round-trips through a weights file; mismatches are named', async () => {
    const e = await testEngine();
    const a = new TinyModel(e, { channels: 2, seed: 1, dropout: 0 });
    const b = new TinyModel(e, { channels: 2, seed: 9, dropout: 0 });
    const bytes = await encodeModel(a, { step: '5' });
    expect(decodeModel(b, bytes, 'a.safetensors')).toMatchObject({ kind: 'tiny', step: '5', config: JSON.stringify(a.config) });
    for (const name of ['weight', 'bias', 'running'] as const) expect(await b[name].data()).toEqual(await a[name].data());

    const wide = new TinyModel(e, { channels: 3, seed: 1, dropout: 0 });
    expect(() => decodeModel(wide, bytes, 'a.safetensors')).toThrow(
      'a.safetensors does not fit the model: head.weight is [1, 2, 1, 1] f32, the model has [1, 3, 1, 1] f32',
    );
    const { tensors } = decodeSafetensors(bytes);
    tensors.delete('head.bias');
    tensors.set('head.extra', { shape: [1], data: new Float32Array(1) });
    expect(() => decodeModel(b, encodeSafetensors(tensors), 'x.safetensors')).toThrow('missing head.bias; unexpected head.extra');
    const other = encodeSafetensors(tensors, { kind: 'rdcnet' });
    expect(() => decodeModel(b, other, 'y.safetensors')).toThrow('y.safetensors holds a rdcnet model, not tiny');
    for (const m of [a, b, wide]) m.dispose();
  });

  it("Adam's moments and step counts round-trip, and the restored optimizer continues identically", async () => {
    const e = await testEngine();
    const names = ['head.weight', 'head.bias'];
    const make = () => new TinyModel(e, { channels: 2, seed: 3, dropout: 0 });
    const stepOnce = (model: TinyModel, opt: Adam) =>
      e.tidy(() => {
        mean(square(model.infer(e.tensor([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2])))).backward();
        opt.step(0.01);
        opt.zeroGrad();
      });
    const a = make();
    const optA = new Adam([a.weight, a.bias], { lr: 0.01 });
    stepOnce(a, optA);
    stepOnce(a, optA);
    const saved = await encodeAdam(optA, names, { step: '2' });
    expect([...decodeSafetensors(saved).tensors.keys()].sort()).toEqual([
      'head.bias.exp_avg', 'head.bias.exp_avg_sq', 'head.bias.step', 'head.weight.exp_avg', 'head.weight.exp_avg_sq', 'head.weight.step',
    ]);
    const b = make();
    decodeModel(b, await encodeModel(a), 'a');
    const optB = new Adam([b.weight, b.bias], { lr: 0.01 });
    expect(decodeAdam(optB, names, saved, 'opt')).toEqual({ step: '2' });
    expect(optB.getState().map((s) => s?.step)).toEqual([2, 2]);
    stepOnce(a, optA);
    stepOnce(b, optB);
    expect(await b.weight.data()).toEqual(await a.weight.data());
    expect(() => decodeAdam(optB, ['w', 'b'], saved, 'opt.safetensors')).toThrow('opt.safetensors does not fit the model\'s parameters: unexpected head.bias');
    for (const m of [a, b]) m.dispose();
    optA.dispose();
    optB.dispose();
  });
});

describe('atomic writes', () => {
  it('a failure while staging several files leaves the old files and no temporaries', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'a.json'), 'old a');
    const files = [{ path: join(dir, 'a.json'), data: 'new a' }, { path: join(dir, 'missing', 'b.json'), data: 'b' }];
    await expect(writeFilesAtomic(files)).rejects.toThrow('ENOENT');
    expect(readFileSync(join(dir, 'a.json'), 'utf8')).toBe('old a');
    expect(readdirSync(dir)).toEqual(['a.json']);
    const run = new RunFolder(dir);
    await run.write({ 'a.json': 'new a', 'c.bin': new Uint8Array([1, 2]) });
    expect(readdirSync(dir).sort()).toEqual(['a.json', 'c.bin']);
    expect(await run.readJSON('a.json').catch((err: Error) => err.message)).toContain('a.json: not valid JSON');
    await expect(run.read('nope.json')).rejects.toThrow(`${join(dir, 'nope.json')}: no such file`);
  });

  it('a write killed between its renames is finished by the next use of the folder, so its files never disagree', async () => {
    const dir = tmp();
    const run = new RunFolder(dir);
    await run.write({ 'last.bin': 'step 5', 'state.json': '{"step":5}' });
    // What a process killed after the first of its renames leaves: the journal, the renamed file, the other's temporary.
    writeFileSync(join(dir, '.state.json.123-abcd.tmp'), '{"step":10}');
    writeFileSync(join(dir, '.commit.json'), JSON.stringify([['.last.bin.123-ef01.tmp', 'last.bin'], ['.state.json.123-abcd.tmp', 'state.json']]));
    writeFileSync(join(dir, 'last.bin'), 'step 10');
    const next = new RunFolder(dir);
    expect(new TextDecoder().decode(await next.read('state.json'))).toBe('{"step":10}');
    expect(new TextDecoder().decode(await next.read('last.bin'))).toBe('step 10');
    expect(readdirSync(dir).sort()).toEqual(['last.bin', 'state.json']);
  });

  it('a process killed mid-write leaves the old file intact', async () => {
    const dir = tmp();
    const target = join(dir, 'last.safetensors');
    writeFileSync(target, 'old checkpoint');
    // The child writes 400 MB through writeFileAtomic; it is killed as soon as its temporary file shows up.
    const script = `import { writeFileAtomic } from './src/train/checkpoint-node.ts';
      await writeFileAtomic(${JSON.stringify(target)}, new Uint8Array(400 << 20).fill(7));`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    while (readdirSync(dir).length < 2 && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    await exited;
    expect(readFileSync(target, 'utf8')).toBe('old checkpoint');
    await writeFileAtomic(target, 'new checkpoint');
    expect(readFileSync(target, 'utf8')).toBe('new checkpoint');
  });
});
