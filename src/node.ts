// Node-only entry: Dawn's WebGPU through the `webgpu` package. Everything else in wgseg runs unchanged in Deno and
// browsers, where createEngine() from the main entry uses navigator.gpu.
import { create, globals } from 'webgpu';
import { createEngine, type Engine, type EngineOptions } from './engine/engine.ts';
import { parseTuning } from './engine/tuning.ts';

export * from './index.ts';

/**
 * Dawn's instance, one for the process. Dawn prints a warning to stderr from native code each time an instance first
 * looks for adapters and clamps a limit the driver reports (lavapipe and RADV offer 1000000 dynamic buffers per
 * pipeline layout, Dawn keeps 16): no toggle turns it off, but a second engine on the same instance prints nothing.
 * The `wgseg` command drops it from its stderr (bin/wgseg.js).
 */
let gpu: GPU | null = null;

/**
 * An engine on the best adapter Dawn finds (a real GPU, else Mesa's lavapipe when `npm run setup` installed it).
 * The environment variable WGSEG_TUNING (`matmulBlock=4,matmulTile=64`, src/engine/tuning.ts) changes kernel shapes
 * where options.tuning does not say, for benchmarks and the `wgseg` command alike.
 */
export async function createNodeEngine(options: Omit<EngineOptions, 'gpu'> = {}): Promise<Engine> {
  const fromEnv = process.env.WGSEG_TUNING ? parseTuning(process.env.WGSEG_TUNING) : {};
  Object.assign(globalThis, globals);
  // Full-resolution timestamps: Dawn otherwise rounds them to 65.536 µs.
  gpu ??= create(['disable-dawn-features=timestamp_quantization']);
  return createEngine({ ...options, gpu, tuning: { ...fromEnv, ...options.tuning } });
}
export * from './train/checkpoint-node.ts';
export * from './train/io-node.ts';
export * from './train/tiff-node.ts';
export * from './train/dataset-node.ts';
