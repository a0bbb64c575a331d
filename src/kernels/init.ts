// Parameter initializers with torch.nn.init's conventions, drawn with the Philox generator (random.ts) so that a seed
// reproduces a model's initial weights on any device. Each returns a parameter (engine.param: requires grad, kept out
// of tidy scopes).
import type { Engine } from '../engine/engine.ts';
import { sizeOf, type Shape, type Tensor } from '../engine/tensor.ts';
import { randomNormal, randomUniform } from './random.ts';

/**
 * fan_in and fan_out as PyTorch computes them: dimension 1 and dimension 0 times the receptive field (the product of the
 * rest), which fits [out, in] linear weights and conv weights [Cout, Cin/groups, k...].
 */
export function fans(shape: Shape): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`init: fan in and fan out need a weight of at least 2 dimensions, got [${shape.join(', ')}]`);
  const receptive = sizeOf(shape.slice(2));
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/** The gain that keeps activations' variance through a leaky ReLU of this negative slope: √(2 / (1 + slope²)); √2 for ReLU. */
export const leakyReluGain = (slope = 0): number => Math.sqrt(2 / (1 + slope * slope));

export interface HeOptions {
  /** The leaky ReLU's negative slope that follows the layer (default 0: ReLU); gives the default gain. */
  slope?: number;
  /** Overrides leakyReluGain(slope). */
  gain?: number;
  /** Keep the variance of the forward pass ('fanIn', default) or of the backward pass ('fanOut'). */
  mode?: 'fanIn' | 'fanOut';
}

function heStd(op: string, shape: Shape, options: HeOptions): number {
  const { fanIn, fanOut } = fans(shape);
  const fan = options.mode === 'fanOut' ? fanOut : fanIn;
  if (fan === 0) throw new Error(`${op}: weight [${shape.join(', ')}] has no inputs (fan is 0)`);
  return (options.gain ?? leakyReluGain(options.slope)) / Math.sqrt(fan);
}

/** Kaiming He normal: N(0, std²), std = gain / √fan (torch.nn.init.kaiming_normal_). */
export function heNormal(e: Engine, shape: Shape, seed: number, options: HeOptions = {}): Tensor {
  return e.param(randomNormal(e, shape, seed, 0, heStd('heNormal', shape, options)));
}

/** Kaiming He uniform: U(−b, b), b = gain·√(3 / fan), the same std as heNormal (torch.nn.init.kaiming_uniform_). */
export function heUniform(e: Engine, shape: Shape, seed: number, options: HeOptions = {}): Tensor {
  const bound = Math.sqrt(3) * heStd('heUniform', shape, options);
  return e.param(randomUniform(e, shape, seed, -bound, bound));
}

function xavierStd(op: string, shape: Shape, gain: number): number {
  const { fanIn, fanOut } = fans(shape);
  if (fanIn + fanOut === 0) throw new Error(`${op}: weight [${shape.join(', ')}] is empty (fan in + fan out is 0)`);
  return gain * Math.sqrt(2 / (fanIn + fanOut));
}

/** Glorot/Xavier normal: N(0, std²), std = gain·√(2 / (fan_in + fan_out)) (torch.nn.init.xavier_normal_). */
export function xavierNormal(e: Engine, shape: Shape, seed: number, gain = 1): Tensor {
  return e.param(randomNormal(e, shape, seed, 0, xavierStd('xavierNormal', shape, gain)));
}

/** Glorot/Xavier uniform: U(−b, b), b = gain·√(6 / (fan_in + fan_out)) (torch.nn.init.xavier_uniform_). */
export function xavierUniform(e: Engine, shape: Shape, seed: number, gain = 1): Tensor {
  const bound = Math.sqrt(3) * xavierStd('xavierUniform', shape, gain);
  return e.param(randomUniform(e, shape, seed, -bound, bound));
}

/** A zero parameter (biases; EmbedSeg's offset head). */
export function zerosInit(e: Engine, shape: Shape): Tensor {
  return e.param(e.zeros(shape));
}
