// What the shared pipeline (training loop, checkpoints, tiled prediction, CLI) needs from an instance-segmentation
// model. RDCNet, EmbedSeg, PatchPerPix and CenterUNet each implement it; the pipeline never looks inside.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { Labels } from '../train/layers.ts';
import type { RotatedBox } from '../train/rotated-box.ts';
import type { TrainingRecipe } from '../train/run.ts';

/** Voxel size per spatial axis in physical units ([y, x] in 2D, [z, y, x] in 3D). */
export type Spacing = readonly number[];

export interface TrainBatch {
  /** [N, C, (D), H, W] f32, normalized. */
  images: Tensor;
  /**
   * [N, 1, (D), H, W] i32 instance labels: 0 background, 1..K instances, -1 unlabeled (ignored by every loss). Where
   * instances overlap, the lowest id wins (layer 0 of `layers`).
   */
  labels: Tensor;
  /**
   * [N, L, (D), H, W] i32, L ≥ 2: every instance of each pixel, as layers in canonical form (src/train/layers.ts), for
   * models that learn overlaps (InstanceModel.overlapping) when the data has them; absent otherwise.
   */
  layers?: Tensor;
  spacing: Spacing;
}

/** What loss() returns: the loss, or named terms (heatmap, size, ...) that the trainer adds up and reports one by one. */
export type LossTerms = Tensor | Readonly<Record<string, Tensor>>;

/**
 * An object a model detects (InstanceModel.detections): its rotated rectangle in image pixels (src/train/rotated-box.ts:
 * pixel (y, x) covers [x, x + 1) × [y, y + 1); width the long side, height the short side, angle of the long side to
 * the x axis towards y, in [0, π)) and its score in [0, 1].
 */
export interface Detection extends RotatedBox {
  score: number;
}

export interface NamedTensor {
  tensor: Tensor;
  /** False for state that is saved but not optimized (batch-norm running statistics). */
  trainable: boolean;
}

export interface InstanceModel {
  /** The `--model` name: 'rdcnet', 'embedseg', ... */
  readonly kind: string;
  /** JSON-serializable hyperparameters; saved beside the weights and enough to rebuild the model. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly ndim: 2 | 3;
  readonly inChannels: number;
  /** Spatial sizes given to infer() must be multiples of this, per axis. */
  readonly sizeMultiple: readonly number[];
  /** Context per axis that a tile needs around the pixels it keeps, for seamless stitching. */
  readonly tileMargin: readonly number[];
  /**
   * Input pixels per output pixel of infer(), per axis (CenterNet's heads: 4); absent means 1. Each must divide
   * sizeMultiple on its axis, so that tiles start on the output grid.
   */
  readonly outputStride?: readonly number[];
  /** Whether loss() learns overlapping instances from TrainBatch.layers (and postprocess() may return layers). */
  readonly overlapping?: boolean;

  /** Every tensor of the model by a stable name ("block.sSDC.weight"), for safetensors checkpoints. */
  namedTensors(): Map<string, NamedTensor>;

  /**
   * The training loss of one batch (training mode: dropout, batch statistics): one scalar, or named scalar terms whose
   * sum is minimized. A promise where the loss needs a readback to build its graph (EmbedSeg reads each crop's
   * instance count back once).
   */
  loss(batch: TrainBatch, step: number): LossTerms | Promise<LossTerms>;

  /**
   * Raw outputs of a tile in inference mode, [N, K, (D)/s, H/s, W/s] for the output stride s, translation-equivariant
   * (no absolute coordinates added), so tiles can be cropped and stitched before postprocess().
   */
  infer(images: Tensor): Tensor;

  /**
   * Optional: the compact evidence that is stitched instead of the raw outputs of each tile (PatchPerPix: 41² patch
   * values per pixel would take gigabytes for a whole image). Maps infer()'s [N, K, ...] to [N, K', ...] on the same
   * grid, translation-equivariant; tileMargin covers its reach as well as the network's. The raw outputs are freed
   * tile by tile.
   */
  reduceTile?(outputs: Tensor): Tensor;

  /**
   * Instance labels [(D), H, W] (0 = background; layers where instances overlap) from the stitched outputs of one
   * whole image [1, K, ...] (reduceTile's where the model has one). `values` replaces config fields named by
   * postprocessGrid() for this call (tuning tries them without a rebuild). `size` is the image's spatial size, which
   * the labels have (the outputs are ⌈size / outputStride⌉).
   */
  postprocess(outputs: Tensor, spacing: Spacing, values?: Readonly<Record<string, number>>, size?: readonly number[]): Promise<Labels>;

  /**
   * Optional, for models that detect objects as boxes (CenterUNet's heatmap and box heads): the detections in the same
   * stitched outputs of one whole 2D image that postprocess() gets, by descending score, with the config's
   * postprocessing parameters (its score threshold and top-K). `size` is the image's [H, W]. `wgseg predict` writes
   * them beside the labels (OUT/boxes/NAME.json).
   */
  detections?(outputs: Tensor, size: readonly number[]): Promise<Detection[]>;

  /**
   * Candidate values of the postprocessing parameters worth tuning on validation images after training, by config
   * field (RDCNet: votingWindow, minCount). The pipeline scores every combination on the same raw outputs and writes
   * the best into the saved config, so a model rebuilt from it postprocesses with them. Absent: nothing to tune.
   */
  postprocessGrid?(): Record<string, number[]>;

  dispose(): void;
}

/** Builds a model from its saved config (random weights; the checkpoint loader fills them). */
export type ModelFactory = (engine: Engine, config: Record<string, unknown>) => InstanceModel;

// What the pipeline knows about each model besides the model itself (src/models/registry.ts lists them).

/** Named configs of a model, by preset name. */
export type ModelPresets = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** One model for the pipeline: how to build it, its named configs and how its paper trains it. */
export interface ModelSpec {
  /** The `--model` name, InstanceModel.kind of what `factory` builds. */
  readonly kind: string;
  readonly factory: ModelFactory;
  /** Named configs; the first is the default where nothing says which dimension the images have. */
  readonly presets: ModelPresets;
  /** The names of `presets` for 2D and for 3D images, in order: each list's first is that dimension's default. */
  readonly presetsByNdim: Readonly<Record<2 | 3, readonly string[]>>;
  /** How the model trains where a run's config does not say: its paper's optimizer, schedule, crops, augmentation. */
  readonly recipe: TrainingRecipe;
  /**
   * The config fields tuned after training. Their candidates stay InstanceModel.postprocessGrid(), a method of the
   * built model, because they depend on its config (RDCNet's voting window scales with its margin).
   */
  readonly tunes: readonly string[];
  /**
   * A preset shrunk for tests: the same structure (dimension, strides, heads) with widths and depths cut so that the
   * contract test (test/contract.test.ts) runs in seconds on a software GPU, and with a receptive field that fits in
   * the model's tileMargin, so tiled prediction must equal one untiled pass exactly.
   */
  readonly tiny: (preset: Readonly<Record<string, unknown>>) => Record<string, unknown>;
}

/** Models by kind, as the pipeline looks them up: what a list of ModelSpecs comes to (or a hand-made set, in tests). */
export interface ModelRegistry {
  factories: Readonly<Record<string, ModelFactory>>;
  presets: Readonly<Record<string, ModelPresets>>;
  recipes?: Readonly<Record<string, TrainingRecipe>>;
  presetsByNdim?: Readonly<Record<string, ModelSpec['presetsByNdim']>>;
}
