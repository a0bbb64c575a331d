// Images and label images on the CPU, as the data pipeline passes them around (pure TypeScript, every runtime).

/** An image: channels first, [C, (D), H, W], float32 (raw intensities as read, or normalized). */
export interface ImageVolume {
  data: Float32Array;
  /** [C, H, W] in 2D, [C, D, H, W] in 3D. */
  shape: number[];
  /** Physical size of a pixel/voxel per spatial axis ([y, x] or [z, y, x]); 1 where the file says nothing. */
  spacing: number[];
}

/**
 * Instance labels: [(D), H, W], 0 background, 1..K instances, -1 unlabeled (ignored by losses and metrics). Where
 * instances overlap, `data` holds `layers` such label images one after the other (src/train/layers.ts): layer 0 is the
 * flat label image where the lowest id wins. Absent `layers` means one.
 */
export interface LabelVolume {
  data: Int32Array;
  /** The spatial shape of one layer. */
  shape: number[];
  spacing: number[];
  layers?: number;
}

/** One sample of a dataset folder: `name` is the file name without extension, shared by image and mask. */
export interface Sample {
  name: string;
  image: ImageVolume;
  labels: LabelVolume | null;
}

export const spatialShape = (v: ImageVolume): number[] => v.shape.slice(1);
