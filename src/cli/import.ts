// `wgseg import`: a run folder that predict (and train --init) use, made from a model another program trained; so far
// EmbedSeg's PyTorch checkpoints (src/train/embedseg-import.ts). Nothing is written unless the whole file maps.
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { RunFolder } from '../train/checkpoint-node.ts';
import { importEmbedSeg, readEmbedSeg } from '../train/embedseg-import.ts';
import { DataError } from '../train/io-node.ts';
import { json } from '../train/run-store.ts';
import { parse, required, spacingFlag, UsageError } from './args.ts';
import type { Context } from './main.ts';

export const importHelp = `wgseg import --from embedseg MODEL --out RUN [options]

Makes RUN/{config.json, best.safetensors}, a run folder for wgseg predict and wgseg train --init, from a model trained
with another method's own code. No Python is needed.

  --from embedseg    MODEL was trained with EmbedSeg's PyTorch code (juglab/EmbedSeg): a file torch.save wrote
                     (checkpoint.pth, best_iou_model.pth: a dict with model_state_dict, or a bare state dict; the
                     legacy pre-1.6 format too) or a safetensors file of the state dict. The network (2D or 3D,
                     input channels, widths, block counts, outputs) follows from the tensors' shapes; the dilations,
                     which do not show in them, are EmbedSeg's 2, 4, 8, 16. Prediction normalizes each image channel
                     between its 1st and 99.8th percentiles (EmbedSeg's min-max-percentile) and clusters with
                     EmbedSeg's defaults (seed threshold 0.9; --tta at predict for its test-time augmentation)
  --out RUN          the run folder (created; must not hold a run)
  --spacing Z,Y,X    voxel spacing to give every image at prediction instead of the files' (Y,X in 2D); in 3D,
                     EmbedSeg's anisotropy_factor along z and 1 along y and x`;

const flags = { from: { type: 'string' }, out: { type: 'string' }, spacing: { type: 'string' } } as const;

const methods = ['embedseg'];

export async function importModel(argv: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse('import', argv, flags, true);
  if (values.help) {
    ctx.stdout.write(`${importHelp}\n`);
    return 0;
  }
  const method = required('import', values, 'from');
  if (!methods.includes(method)) throw new UsageError(`--from ${method}: import reads models of ${methods.join(', ')} (see wgseg import --help)`);
  if (positionals.length !== 1) {
    const got = positionals.length ? positionals.map((p) => `"${p}"`).join(' ') : 'none';
    throw new UsageError(`takes one model file, got ${got} (see wgseg import --help)`);
  }
  const [file] = positionals;
  const out = required('import', values, 'out');
  const spacing = spacingFlag(values.spacing) ?? null;
  const outStat = await stat(out).catch(() => null);
  if (outStat && !outStat.isDirectory()) throw new DataError(`--out: ${out} exists and is not a folder`);
  const folder = new RunFolder(out);
  if (folder.has('config.json')) throw new UsageError(`--out: ${out} already holds a run (config.json); choose another folder`);

  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new DataError(`${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  const checkpoint = readEmbedSeg(bytes, file);
  const { ndim } = checkpoint.network;
  if (spacing && spacing.length !== ndim) throw new UsageError(`--spacing has ${spacing.length} values; ${file} holds a ${ndim}D model`);
  const { run, weights, ignored } = importEmbedSeg(await ctx.engine(), ctx.registry, checkpoint, { from: resolve(file), what: file, spacing });
  // The weights first: a folder without config.json is not a run, so an interrupted import leaves none.
  await folder.write({ 'best.safetensors': weights, 'config.json': json(run) });
  const tensors = checkpoint.state.size - ignored.length;
  const summary = { run: out, from: run.imported?.from, preset: run.model.preset, network: checkpoint.network, tensors, ignored: ignored.length };
  ctx.stdout.write(`${JSON.stringify(summary)}\n`);
  return 0;
}
