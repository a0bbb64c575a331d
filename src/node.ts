// Node-only entry: Dawn's WebGPU through the `webgpu` package. Everything else in wgseg runs unchanged in Deno and
// browsers, where createEngine() from the main entry uses navigator.gpu.
import { create, globals } from 'webgpu';
import { createEngine, type Engine, type EngineOptions } from './engine/engine.ts';

export * from './index.ts';

/** An engine on the best adapter Dawn finds (a real GPU, else Mesa's lavapipe when `npm run setup` installed it). */
export async function createNodeEngine(options: Omit<EngineOptions, 'gpu'> = {}): Promise<Engine> {
  Object.assign(globalThis, globals);
  // Full-resolution timestamps: Dawn otherwise rounds them to 65.536 µs.
  const gpu = create(['disable-dawn-features=timestamp_quantization']);
  return createEngine({ ...options, gpu });
}
export * from './train/checkpoint-node.ts';
export * from './train/io-node.ts';
export * from './train/tiff-node.ts';
export * from './train/dataset-node.ts';
