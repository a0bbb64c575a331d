// The training loop every model shares (pure TypeScript, every runtime): Adam with a cosine or poly learning-rate decay, a
// step per batch inside its own scope, the loss read back only every few steps (a readback stalls the GPU queue),
// validation and checkpoints every few hundred steps, a time limit, and a clean stop on a NaN/Inf loss. Where batches
// come from and where checkpoints go are hooks, so the same loop runs under the CLI, in tests and in a browser.
import { Adam } from '../kernels/optim.ts';
import { Tensor } from '../engine/tensor.ts';
import { add } from '../kernels/elementwise.ts';
import type { InstanceModel, LossTerms, TrainBatch } from '../models/model.ts';
import { decodeAdam, decodeModel, encodeAdam, encodeSafetensors, modelMetadata, modelTensors, readTensors } from './checkpoint.ts';
import { cosineDecay, polyDecay, type LRSchedule } from './schedule.ts';

export interface TrainOptions {
  steps: number;
  batchSize: number;
  /** Cosine decay from `lr` to `lrMin` over `steps` (RDCNet: 1e-3 → 1e-5), or poly decay lr·(1 − t/T)^0.9 (EmbedSeg). */
  lr: number;
  lrMin: number;
  schedule: 'cosine' | 'poly';
  /** L2 weight decay added to the gradients (torch.optim.Adam's weight_decay; EmbedSeg: 1e-4). */
  weightDecay: number;
  /** Linear warmup steps before the decay, counted within `steps`. */
  warmup: number;
  /** With the step, seeds each batch's crops and augmentation (the model seeds its dropout with the step). */
  seed: number;
  /** Read the loss back (and report progress) every this many steps. */
  logEvery: number;
  /** Validate and save the last checkpoint every this many steps (and after the last step). */
  validateEvery: number;
  /**
   * Also save the last checkpoint (without validating) every this many steps, so that a run killed between two
   * validations resumes close to where it stopped rather than from the previous validation.
   */
  saveEvery: number;
  /** The validation metric (a key of the metrics validate() returns; higher is better; ties go to the later step) that picks best.safetensors. */
  bestMetric: string;
}

export const defaultTrainOptions: TrainOptions = {
  steps: 2000, batchSize: 4, lr: 1e-3, lrMin: 1e-5, schedule: 'cosine', weightDecay: 0, warmup: 0, seed: 0, logEvery: 10, validateEvery: 200, saveEvery: 100, bestMetric: 'f1',
};

/** Merges user options over the defaults and checks them, naming the offending option. */
export function trainOptions(user: Partial<TrainOptions> = {}): TrainOptions {
  const known = new Set(Object.keys(defaultTrainOptions));
  for (const key of Object.keys(user)) if (!known.has(key)) throw new Error(`training option "${key}" is unknown (known: ${[...known].join(', ')})`);
  const o = { ...defaultTrainOptions, ...user };
  for (const key of ['steps', 'batchSize', 'logEvery', 'validateEvery', 'saveEvery'] as const) {
    if (!Number.isInteger(o[key]) || o[key] <= 0) throw new Error(`training option ${key} must be a positive integer, got ${o[key]}`);
  }
  // Batches are seeded with seed·2^32 + step, which must stay an exact integer (< 2^53).
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed >= 2 ** 20) throw new Error(`training option seed must be an integer in [0, 2^20), got ${o.seed}`);
  if (!(o.lr > 0 && o.lrMin >= 0 && o.lrMin <= o.lr)) throw new Error(`training options need 0 <= lrMin <= lr and lr > 0, got lr ${o.lr}, lrMin ${o.lrMin}`);
  if (typeof o.bestMetric !== 'string') throw new Error('training option bestMetric must be a metric name');
  if (o.schedule !== 'cosine' && o.schedule !== 'poly') throw new Error(`training option schedule must be "cosine" or "poly", got ${JSON.stringify(o.schedule)}`);
  if (!(o.weightDecay >= 0)) throw new Error(`training option weightDecay must be a number >= 0, got ${o.weightDecay}`);
  learningRate(o);
  return o;
}

/** The learning rate of every step under the options' schedule. */
export function learningRate(o: TrainOptions): LRSchedule {
  const { lr, lrMin, steps, warmup } = o;
  return o.schedule === 'poly' ? polyDecay({ lr0: lr, steps }) : cosineDecay({ lr0: lr, lrMin, steps, warmup });
}

/** Where a run stands; saved as state.json beside the last checkpoint. */
export interface TrainState {
  /** Steps done; the next step (and the learning-rate schedule's position) is this one. */
  step: number;
  seed: number;
  /** Adam updates done (equals `step` unless a parameter got no gradient). */
  optimizerSteps: number;
  lr: number;
  /** The last loss read back (the sum of the terms). */
  loss: number | null;
  /** The last named loss terms read back, where the model's loss has names (absent in runs saved before them). */
  terms?: Record<string, number> | null;
  best: { metric: string; value: number; step: number } | null;
  /** Training time over every session of the run. */
  seconds: number;
}

/** A checkpoint for the hook to persist: 'last' carries everything --resume needs, 'best' only weights. */
export type Checkpoint =
  | { which: 'last'; weights: Uint8Array; optimizer: Uint8Array; state: TrainState }
  | { which: 'best'; weights: Uint8Array; state: TrainState };

export type TrainEvent =
  | { type: 'step'; step: number; steps: number; loss: number | null; terms: Record<string, number> | null; lr: number; stepsPerSecond: number }
  | { type: 'validation'; step: number; metrics: Record<string, number>; improved: boolean }
  | { type: 'checkpoint'; step: number; which: 'last' | 'best' };

export interface TrainHooks {
  /**
   * The batch of step `step`: a function of the seed and the step only, so a resumed run sees the same batches. The
   * tensors it creates are freed after the step.
   */
  batch(step: number): TrainBatch | Promise<TrainBatch>;
  /** Metrics of the model on the validation images. */
  validate?(): Promise<Record<string, number>>;
  save(checkpoint: Checkpoint): Promise<void>;
  progress?(event: TrainEvent): void;
  /** Milliseconds, for steps/s and the time limit (default performance.now). */
  now?(): number;
}

export interface TrainResult {
  /** 'done': all steps; 'time': the time limit stopped it (last saved); 'diverged': a NaN/Inf loss stopped it. */
  reason: 'done' | 'time' | 'diverged';
  state: TrainState;
  /** For 'diverged': what happened and which checkpoint was kept. */
  message?: string;
}

export class Trainer {
  readonly optimizer: Adam;
  readonly options: TrainOptions;
  /** Names of the trainable tensors, in optimizer.params order. */
  readonly paramNames: string[];
  readonly schedule: LRSchedule;
  state: TrainState;
  /** The step of the last checkpoint written (or restored): what a stop on NaN keeps. */
  private savedStep: number | null = null;

  constructor(readonly model: InstanceModel, options: Partial<TrainOptions> = {}) {
    this.options = trainOptions(options);
    const trainable = [...model.namedTensors()].filter(([, t]) => t.trainable);
    this.paramNames = trainable.map(([name]) => name);
    this.optimizer = new Adam(trainable.map(([, t]) => t.tensor), { lr: this.options.lr, weightDecay: this.options.weightDecay });
    this.schedule = learningRate(this.options);
    this.state = { step: 0, seed: this.options.seed, optimizerSteps: 0, lr: this.schedule(0), loss: null, best: null, seconds: 0 };
  }

  /** Continues from a 'last' checkpoint: weights, Adam's moments and the state; `what` names the source in errors. */
  restore(weights: Uint8Array, optimizer: Uint8Array, state: TrainState, what: string): void {
    const weightsStep = decodeModel(this.model, weights, `${what}/last.safetensors`).step;
    const optimizerStep = decodeAdam(this.optimizer, this.paramNames, optimizer, `${what}/optimizer.safetensors`).step;
    if (weightsStep !== String(state.step) || optimizerStep !== String(state.step)) {
      throw new Error(
        `${what}: last.safetensors (step ${weightsStep}), optimizer.safetensors (step ${optimizerStep}) and state.json ` +
          `(step ${state.step}) disagree; the run was interrupted while saving`,
      );
    }
    if (state.seed !== this.options.seed) throw new Error(`${what}: state.json has seed ${state.seed}, the config ${this.options.seed}`);
    this.state = { ...state };
    this.savedStep = state.step;
  }

  /** Trains until `options.steps` steps are done, the time limit passes, or the loss diverges. */
  async run(hooks: TrainHooks, { maxMinutes = Infinity }: { maxMinutes?: number } = {}): Promise<TrainResult> {
    const e = this.optimizer.params[0].engine;
    const { steps, logEvery, validateEvery, saveEvery } = this.options;
    const now = hooks.now ?? (() => performance.now());
    const started = now();
    let session = started;
    let rateFrom = { time: started, step: this.state.step };
    const addTime = () => {
      const t = now();
      this.state.seconds += (t - session) / 1000;
      session = t;
    };
    while (this.state.step < steps) {
      const step = this.state.step;
      const lr = this.schedule(step);
      const validateNow = (step + 1) % validateEvery === 0 || step + 1 === steps;
      const checkpointNow = validateNow || (step + 1) % saveEvery === 0;
      const readLoss = (step + 1) % logEvery === 0 || checkpointNow;
      const scope = e.beginScope();
      let loss: number | null = null;
      let terms: Record<string, number> | null = null;
      try {
        const batch = await hooks.batch(step);
        const { total, named } = sumTerms(await this.model.loss(batch, step), this.model.kind);
        total.backward();
        this.optimizer.step(lr);
        this.optimizer.zeroGrad();
        if (readLoss) {
          loss = await total.item();
          if (named) terms = Object.fromEntries(await Promise.all(named.map(async ([name, t]) => [name, await t.item()] as const)));
        }
      } finally {
        scope.end();
      }
      this.state = { ...this.state, step: step + 1, optimizerSteps: this.optimizerSteps(), lr };
      if (loss !== null && !Number.isFinite(loss)) {
        const bad = terms && Object.entries(terms).filter(([, v]) => !Number.isFinite(v)).map(([k, v]) => `${k} ${v}`);
        return this.diverged(`the loss is ${loss}${bad?.length ? ` (${bad.join(', ')})` : ''} at step ${step + 1}`);
      }
      if (loss !== null) {
        this.state.loss = loss;
        this.state.terms = terms;
        const t = now();
        const stepsPerSecond = ((step + 1 - rateFrom.step) * 1000) / Math.max(t - rateFrom.time, 1e-9);
        rateFrom = { time: t, step: step + 1 };
        hooks.progress?.({ type: 'step', step: step + 1, steps, loss, terms, lr, stepsPerSecond });
      }
      const outOfTime = now() - started >= maxMinutes * 60_000;
      if (checkpointNow || outOfTime) {
        if (validateNow && hooks.validate) {
          const stop = await this.validate(hooks);
          if (stop) return stop;
        }
        addTime();
        const stop = await this.save(hooks, 'last');
        if (stop) return stop;
      }
      if (outOfTime && this.state.step < steps) return { reason: 'time', state: this.state };
    }
    return { reason: 'done', state: this.state };
  }

  private optimizerSteps(): number {
    return Math.max(0, ...this.optimizer.getState().map((s) => s?.step ?? 0));
  }

  private async validate(hooks: TrainHooks): Promise<TrainResult | null> {
    const metrics = await hooks.validate!();
    const metric = this.options.bestMetric;
    const value = metrics[metric];
    if (value === undefined) throw new Error(`validation: no metric "${metric}" (bestMetric); there are ${Object.keys(metrics).join(', ')}`);
    // A tie goes to the later checkpoint, which has trained longer: a run whose metric stays 0 (an undertrained one)
    // keeps its latest weights as best, not its first.
    const improved = !this.state.best || value >= this.state.best.value;
    hooks.progress?.({ type: 'validation', step: this.state.step, metrics, improved });
    if (!improved) return null;
    this.state.best = { metric, value, step: this.state.step };
    return this.save(hooks, 'best');
  }

  /** Reads the weights back and hands them to the hook, unless they hold NaN/Inf (then training stops). */
  private async save(hooks: TrainHooks, which: 'last' | 'best'): Promise<TrainResult | null> {
    const weights = await readTensors(modelTensors(this.model));
    const bad = [...weights].find(([, t]) => t.data instanceof Float32Array && !t.data.every(Number.isFinite));
    if (bad) return this.diverged(`${bad[0]} holds NaN/Inf after step ${this.state.step}`);
    const metadata = { step: String(this.state.step) };
    const encoded = encodeSafetensors(weights, modelMetadata(this.model, metadata));
    const state = { ...this.state };
    if (which === 'last') {
      await hooks.save({ which, weights: encoded, optimizer: await encodeAdam(this.optimizer, this.paramNames, metadata), state });
      this.savedStep = this.state.step;
    } else {
      await hooks.save({ which, weights: encoded, state });
    }
    hooks.progress?.({ type: 'checkpoint', step: this.state.step, which });
    return null;
  }

  private diverged(what: string): TrainResult {
    const kept = this.savedStep === null ? 'no checkpoint was saved yet' : `the last good checkpoint (step ${this.savedStep}) is kept`;
    return { reason: 'diverged', state: this.state, message: `training diverged: ${what}; ${kept}` };
  }
}

/** The scalar to minimize from what loss() returned, and its named terms (null for a single unnamed loss). */
export function sumTerms(loss: LossTerms, kind: string): { total: Tensor; named: [string, Tensor][] | null } {
  if (loss instanceof Tensor) return { total: loss, named: null };
  const named = Object.entries(loss);
  if (named.length === 0) throw new Error(`${kind}.loss returned no terms`);
  for (const [name, t] of named) {
    if (t.size !== 1) throw new Error(`${kind}.loss: term "${name}" has shape [${t.shape.join(', ')}], expected a scalar`);
  }
  return { total: named.slice(1).reduce((acc, [, t]) => add(acc, t), named[0][1]), named };
}
