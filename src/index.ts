// wgseg: a WebGPU compute engine and the instance-segmentation models built on it. Runtime-agnostic entry (Node,
// Deno, browsers, Electron); Node users get a device through createNodeEngine() in './node.ts'.
export { createEngine, Engine, type EngineOptions, type EngineStats } from './engine/engine.ts';
export { Tensor, sizeOf, stridesOf, type Shape } from './engine/tensor.ts';
export { record, type BackwardFn, type GradNode } from './engine/autograd.ts';
export type { DType, AnyTypedArray } from './engine/dtype.ts';
export type { KernelTiming, DispatchSpec } from './engine/dispatch.ts';
export * from './kernels/elementwise.ts';
export * from './kernels/reduce.ts';
export * from './kernels/matmul.ts';
export * from './kernels/softmax.ts';
export * from './kernels/conv.ts';
export * from './kernels/optim.ts';
export * from './train/schedule.ts';
export * from './kernels/shape.ts';
export * from './kernels/pool.ts';
export * from './kernels/upsample.ts';
export * from './kernels/batchnorm.ts';
export * from './kernels/random.ts';
export * from './kernels/init.ts';
export * from './kernels/deform-conv.ts';
export * from './train/synthetic.ts';
export * from './train/volume.ts';
export * from './models/model.ts';
export * from './train/checkpoint.ts';
export * from './train/trainer.ts';
export * from './train/metrics.ts';
export * from './kernels/jaccard.ts';
