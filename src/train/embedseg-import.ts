// A model trained with EmbedSeg's PyTorch code (juglab/EmbedSeg) as a wgseg run, pure TypeScript for every runtime.
// wgseg's BranchedERFNet names its tensors as the reference does, so the state dict maps name for name; the
// architecture comes from the tensors' shapes: 2D or 3D from the kernels' rank, the input channels and the three
// widths from the downsamplers, the block counts from which encoder.layers and decoders.0.layers hold residual blocks,
// the branches' channels from the output convs. Dilations leave no trace in the shapes: the blocks after the third
// downsampler take the reference's 2, 4, 8, 16, repeated. The run normalizes images as EmbedSeg's default
// 'min-max-percentile' does (per channel, (x − p1) / (p99.8 − p1), unclipped) and clusters with the EmbedSeg model's
// defaults (seed > 0.9 starts an object, proposals of at most 36 pixels are dropped, objects under 37 pixels removed).
import type { Engine } from '../engine/engine.ts';
import { embedsegPresets } from '../models/embedseg.ts';
import type { ModelRegistry } from '../models/model.ts';
import { encodeSafetensors, modelMetadata, type HostTensor } from './checkpoint.ts';
import { readStateDict, type TorchTensor } from './pytorch.ts';
import { buildModel, ConfigError, newRunConfig, type RunConfig } from './run.ts';

/** Tensors of a reference state dict that wgseg's network does without: the encoder's 1x1 output conv, used only
 *  by the reference's encoder-only mode, and batch norm's update counters. */
const unused = (name: string) => name.startsWith('encoder.output_conv.') || name.endsWith('.num_batches_tracked');

/** The reference's dilations after the third downsampler, repeated (twice in the paper's network). */
const DILATIONS = [2, 4, 8, 16];

/** An EmbedSeg checkpoint as read: its state dict, and the network config its shapes describe. */
export interface EmbedSegCheckpoint {
  state: Map<string, TorchTensor>;
  /** ERFNet fields (ndim, inChannels, widths, block counts, dilations, outChannels). */
  network: Record<string, unknown>;
}

/** Reads a torch.save checkpoint or safetensors file of a BranchedERFNet; bad files are ConfigErrors naming `what`. */
export function readEmbedSeg(bytes: Uint8Array, what: string): EmbedSegCheckpoint {
  let state: Map<string, TorchTensor>;
  try {
    state = readStateDict(bytes, what);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  return { state, network: networkOf(state, what) };
}

/** The ERFNet config a reference state dict's shapes describe. */
function networkOf(state: ReadonlyMap<string, TorchTensor>, what: string): Record<string, unknown> {
  const stem = state.get('encoder.initial_block.conv.weight');
  if (!stem) {
    const names = [...state.keys()].slice(0, 3).join(', ');
    throw new ConfigError(`${what}: not an EmbedSeg (BranchedERFNet) state dict: it has no encoder.initial_block.conv.weight (it begins ${names})`);
  }
  const ndim = stem.shape.length - 2;
  if (ndim !== 2 && ndim !== 3) throw new ConfigError(`${what}: encoder.initial_block.conv.weight is ${shapeOf(stem)}, not a 2D or 3D conv weight`);
  /** The tensor `name`, of rank `rank`. */
  const get = (name: string, rank: number) => {
    const t = state.get(name);
    if (!t) throw new ConfigError(`${what}: has no ${name}`);
    if (t.shape.length !== rank) throw new ConfigError(`${what}: ${name} is ${shapeOf(t)}, not of rank ${rank}`);
    return t;
  };
  const channels = (bn: string) => get(`${bn}.weight`, 1).shape[0];
  // Layer i of a list is a downsampler or upsampler where it has a conv, else a residual block; the list ends at the
  // first index without tensors (a block missing some is reported by name when the tensors are matched).
  const names = [...state.keys()];
  const has = (prefix: string) => names.some((n) => n.startsWith(`${prefix}.`));
  const kinds = (list: string) => {
    const out: ('sampler' | 'block')[] = [];
    for (let i = 0; has(`${list}.${i}`); i++) out.push(state.has(`${list}.${i}.conv.weight`) ? 'sampler' : 'block');
    return out;
  };
  const samplers = (list: string) => kinds(list).flatMap((k, i) => (k === 'sampler' ? [i] : []));
  // encoder.layers: a downsampler, blocks, a downsampler, blocks.
  const encoder = kinds('encoder.layers');
  const downs = samplers('encoder.layers');
  if (downs.length !== 2 || downs[0] !== 0) {
    throw new ConfigError(
      `${what}: encoder.layers has downsamplers at [${downs.join(', ')}] of ${encoder.length} layers; EmbedSeg's encoder has two, the first at 0`,
    );
  }
  const dilated = encoder.length - downs[1] - 1;
  if (dilated % DILATIONS.length !== 0) {
    throw new ConfigError(
      `${what}: encoder.layers has ${dilated} blocks after its last downsampler; EmbedSeg repeats dilations ${DILATIONS.join(', ')} ` +
        `there, so a multiple of ${DILATIONS.length} (dilations do not show in the shapes)`,
    );
  }
  // A transposed conv's weight is [in, out, k...].
  const outChannels: number[] = [];
  for (let b = 0; has(`decoders.${b}`); b++) outChannels.push(get(`decoders.${b}.output_conv.weight`, ndim + 2).shape[1]);
  // decoders.N.layers: an upsampler, blocks, an upsampler, blocks (the same number).
  const ups = samplers('decoders.0.layers');
  return {
    ndim, inChannels: stem.shape[1], outChannels,
    widths: [channels('encoder.initial_block.bn'), channels('encoder.layers.0.bn'), channels(`encoder.layers.${downs[1]}.bn`)],
    encoderBlocks: downs[1] - 1, dilations: [...DILATIONS], dilatedRepeats: dilated / DILATIONS.length, decoderBlocks: (ups[1] ?? 1) - 1,
  };
}

export interface ImportOptions {
  /** The file, as the run's config records it. */
  from: string;
  /** Names the file in errors. */
  what: string;
  /** Voxel spacing given to every image at prediction (3D: EmbedSeg's anisotropy factor along z); default the images'. */
  spacing?: number[] | null;
}

/** What `wgseg import` writes: the run's config.json and its weights (best.safetensors), and the tensors left out. */
export interface ImportedRun {
  run: RunConfig;
  weights: Uint8Array;
  ignored: string[];
}

const shapeOf = (t: { shape: readonly number[] }) => `[${t.shape.join(', ')}]`;
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The run of an EmbedSeg checkpoint: the EmbedSeg model its shapes describe (built on `e` to list the tensors it needs),
 * each tensor checked by name and shape and converted to float32. A tensor missing, of another shape, not floating-point,
 * or not part of the network is a ConfigError naming it.
 */
export function importEmbedSeg(e: Engine, registry: ModelRegistry, checkpoint: EmbedSegCheckpoint, options: ImportOptions): ImportedRun {
  const { state, network } = checkpoint;
  const { what } = options;
  const ndim = network.ndim as 2 | 3;
  const base = embedsegPresets[ndim === 3 ? 'paper-3d' : 'paper'];
  const model = buildModel(e, registry, 'embedseg', { ...base, ...network });
  try {
    const list = (key: string) => (network[key] as number[]).join(', ');
    const summary =
      `a ${ndim}D network with widths [${list('widths')}], ${network.encoderBlocks} + ${DILATIONS.length}×${network.dilatedRepeats} ` +
      `encoder blocks, ${network.decoderBlocks} per decoder stage and outputs [${list('outChannels')}]`;
    const tensors = new Map<string, HostTensor>();
    for (const [name, { tensor }] of model.namedTensors()) {
      const t = state.get(name);
      if (!t) throw new ConfigError(`${what}: has no ${name}, which ${summary} needs`);
      if (!same(t.shape, tensor.shape)) throw new ConfigError(`${what}: ${name} is ${shapeOf(t)}; ${summary} needs ${shapeOf(tensor)}`);
      if (!t.dtype.startsWith('float')) throw new ConfigError(`${what}: ${name} is ${t.dtype}, not floating-point`);
      try {
        tensors.set(name, { shape: [...t.shape], data: t.float32(`${what}: ${name}`) });
      } catch (err) {
        throw new ConfigError((err as Error).message);
      }
    }
    const extra = [...state.keys()].filter((n) => !tensors.has(n) && !unused(n));
    if (extra.length) {
      throw new ConfigError(`${what}: ${extra[0]}${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''} is not a tensor of ${summary}`);
    }
    const run = newRunConfig(registry, {
      model: { kind: 'embedseg', ndim, config: { ...model.config } }, data: { dir: '', spacing: options.spacing ?? null },
    });
    // A preset's name only where the network is that preset's.
    const isPreset = (p: Readonly<Record<string, unknown>>) => Object.keys(network).every((k) => same(p[k], network[k]));
    run.model.preset = Object.keys(embedsegPresets).find((name) => isPreset(embedsegPresets[name])) ?? null;
    run.data.trainSpacing = options.spacing ?? new Array<number>(ndim).fill(1);
    run.imported = { from: options.from, method: 'embedseg' };
    return { run, weights: encodeSafetensors(tensors, modelMetadata(model)), ignored: [...state.keys()].filter(unused) };
  } finally {
    model.dispose();
  }
}
