// Learning-rate schedules: plain functions from the step (0-based; an epoch works as well) to the learning rate, to
// pass to an optimizer's step(lr). Past the last step every schedule stays at its final value.

export type LRSchedule = (step: number) => number;

function checkSteps(name: string, steps: number, warmup = 0): void {
  if (!Number.isInteger(steps) || steps <= 0) throw new Error(`${name}: steps must be a positive integer, got ${steps}`);
  if (!Number.isInteger(warmup) || warmup < 0 || warmup >= steps) {
    throw new Error(`${name}: warmup must be an integer in [0, steps = ${steps}), got ${warmup}`);
  }
}

export function constantLR(lr: number): LRSchedule {
  return () => lr;
}

export interface CosineDecayOptions {
  lr0: number;
  /** The rate reached at `steps` (default 0); RDCNet decays 1e-3 to 1e-5. */
  lrMin?: number;
  steps: number;
  /** Steps of linear warmup from 0 to lr0 (step/warmup·lr0) before the decay starts; counted within `steps`. */
  warmup?: number;
}

/** lrMin + (lr0 − lrMin)·(1 + cos(π·t/T))/2 with t, T counted after the warmup. */
export function cosineDecay({ lr0, lrMin = 0, steps, warmup = 0 }: CosineDecayOptions): LRSchedule {
  checkSteps('cosineDecay', steps, warmup);
  return (step) => {
    if (step < warmup) return (lr0 * step) / warmup;
    const progress = Math.min(1, (step - warmup) / (steps - warmup));
    return lrMin + ((lr0 - lrMin) * (1 + Math.cos(Math.PI * progress))) / 2;
  };
}

export interface PolyDecayOptions {
  lr0: number;
  steps: number;
  /** EmbedSeg uses 0.9 (per epoch, over 200 epochs). */
  power?: number;
}

/** lr0·(1 − t/T)^power, reaching 0 at T. */
export function polyDecay({ lr0, steps, power = 0.9 }: PolyDecayOptions): LRSchedule {
  checkSteps('polyDecay', steps);
  return (step) => lr0 * (1 - Math.min(1, step / steps)) ** power;
}
