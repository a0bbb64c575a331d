// What the shared pipeline (training loop, checkpoints, tiled prediction, CLI) needs from an instance-segmentation
// model. RDCNet, EmbedSeg, PatchPerPix and CenterUNet each implement it; the pipeline never looks inside.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';

/** Voxel size per spatial axis in physical units ([y, x] in 2D, [z, y, x] in 3D). */
export type Spacing = readonly number[];

export interface TrainBatch {
  /** [N, C, (D), H, W] f32, normalized. */
  images: Tensor;
  /** [N, 1, (D), H, W] i32 instance labels: 0 background, 1..K instances, -1 unlabeled (ignored by every loss). */
  labels: Tensor;
  spacing: Spacing;
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

  /** Every tensor of the model by a stable name ("block.sSDC.weight"), for safetensors checkpoints. */
  namedTensors(): Map<string, NamedTensor>;

  /**
   * The scalar training loss of one batch (training mode: dropout, batch statistics). A promise where the loss needs
   * a readback to build its graph (EmbedSeg reads each crop's instance count back once).
   */
  loss(batch: TrainBatch, step: number): Tensor | Promise<Tensor>;

  /**
   * Raw outputs of a tile in inference mode, [N, K, (D), H, W], translation-equivariant (no absolute coordinates
   * added), so tiles can be cropped and stitched before postprocess().
   */
  infer(images: Tensor): Tensor;

  /**
   * Instance labels [(D), H, W] (0 = background) from the stitched raw outputs of one whole image [1, K, ...].
   * `values` replaces config fields named by postprocessGrid() for this call (tuning tries them without a rebuild).
   */
  postprocess(outputs: Tensor, spacing: Spacing, values?: Readonly<Record<string, number>>): Promise<Int32Array>;

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
