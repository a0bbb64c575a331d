// The training loop every model shares (pure TypeScript, every runtime): Adam with a cosine or poly learning-rate decay, a
// step per batch inside its own scope, the loss read back only every few steps (a readback stalls the GPU queue),
// validation and checkpoints every few hundred steps, a time limit (to which the schedule is fitted, so that a short run
// still ends at its final learning rate), and a clean stop on a NaN/Inf loss. Where batches come from and where
// checkpoints go are hooks, so the same loop runs under the CLI, in tests and in a browser.
import { Adam } from '../kernels/optim.ts';
import { Tensor } from '../engine/tensor.ts';
import { add } from '../kernels/elementwise.ts';
import { concat, reshape } from '../kernels/shape.ts';
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
  /** The schedule fitted to a time limit; absent: the planned one (runs saved before fitting existed have none). */
  fitted?: ScheduleFit;
}

/**
 * A schedule fitted to a time limit: from step `from`, where the run stood at `position` (a step, possibly fractional,
 * of the planned schedule), the planned schedule goes on at a constant pace to reach its end at step `steps`, the
 * run's new last step: the same shape, compressed (or, refitted on a faster machine, stretched), never going back.
 */
export interface ScheduleFit {
  steps: number;
  from: number;
  position: number;
}

/**
 * The first fit measures the step time over this many steps or milliseconds of a session, after its first step (which
 * compiles the pipelines).
 */
const FIT_WINDOW = { steps: 20, ms: 30_000 };
/**
 * The fit aims at the steps that fit in this share of the time left (a margin for the estimate's error), and is
 * refitted when it no longer fits in all of it, or fits in less than 1 − 2·margin of it.
 */
const FIT_MARGIN = 0.05;

/** A checkpoint for the hook to persist: 'last' carries everything --resume needs, 'best' only weights. */
export type Checkpoint =
  | { which: 'last'; weights: Uint8Array; optimizer: Uint8Array; state: TrainState }
  | { which: 'best'; weights: Uint8Array; state: TrainState };

export type TrainEvent =
  /** `steps`: the run's last step (the fitted one, once the schedule is fitted to the time limit). */
  | { type: 'step'; step: number; steps: number; loss: number | null; terms: Record<string, number> | null; lr: number; stepsPerSecond: number }
  /** The schedule was fitted (or refitted) at `step` to end at `steps` instead of `planned`, at the measured pace. */
  | { type: 'schedule'; step: number; steps: number; planned: number; maxMinutes: number; stepsPerSecond: number }
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

export interface RunOptions {
  /** Stop after this many minutes of this session (the last checkpoint is saved). */
  maxMinutes?: number;
  /**
   * With a time limit, fit the schedule to it: from the step time measured after the session's first steps, and the
   * validation and checkpoint times, the steps that fit before the limit become the run's last step, and the learning
   * rate decays along the same schedule to its end value there. Refitted at every validation. Default false: on the
   * synthetic RDCNet benchmark (4-minute limit, 2 runs each) fitted runs tied unfitted ones on F1@0.5 and AP_dsb@0.5
   * and were lower on mean AP_dsb (0.70-0.73 against 0.79), since the unfitted run's best checkpoint is picked on the
   * validation images anyway; it stays opt-in until real data shows a gain. A saved fit is kept on --resume.
   */
  fitSchedule?: boolean;
}

export interface TrainResult {
  /**
   * 'done': all steps (to the fitted last step, for a schedule fitted to the time limit); 'time': the time limit stopped
   * it (last saved); 'diverged': a NaN/Inf loss stopped it.
   */
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
  /** The planned schedule, over options.steps (see lrAt for the one the run follows). */
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
    const fit = state.fitted;
    const planned = this.options.steps;
    if (fit && !(Number.isInteger(fit.steps) && fit.from < fit.steps && fit.steps <= planned && fit.position >= 0 && fit.position <= planned)) {
      throw new Error(`${what}: state.json's fitted schedule ${JSON.stringify(fit)} does not fit the config's ${planned} steps`);
    }
    this.state = { ...state };
    this.savedStep = state.step;
  }

  /** The run's last step: options.steps, or the fitted one. */
  get steps(): number {
    return this.state.fitted?.steps ?? this.options.steps;
  }

  /** The step of the planned schedule that step `step` (from the fit on) runs at. */
  planStep(step: number): number {
    const fit = this.state.fitted;
    if (!fit) return step;
    return fit.position + (this.options.steps - fit.position) * Math.min(1, (step - fit.from) / (fit.steps - fit.from));
  }

  /** The learning rate of step `step`: the planned schedule's, or the fitted one's. */
  lrAt(step: number): number {
    return this.schedule(this.planStep(step));
  }

  /** Trains until the run's last step is done, the time limit passes, or the loss diverges. */
  async run(hooks: TrainHooks, { maxMinutes = Infinity, fitSchedule = false }: RunOptions = {}): Promise<TrainResult> {
    const e = this.optimizer.params[0].engine;
    const { logEvery, validateEvery, saveEvery } = this.options;
    const now = hooks.now ?? (() => performance.now());
    const started = now();
    const limitMs = maxMinutes * 60_000;
    const pace = fitSchedule && maxMinutes < Infinity ? new Pace() : null;
    let session = started;
    let rateFrom = { time: started, step: this.state.step };
    const addTime = () => {
      const t = now();
      this.state.seconds += (t - session) / 1000;
      session = t;
    };
    while (this.state.step < this.steps) {
      const step = this.state.step;
      const steps = this.steps;
      const lr = this.lrAt(step);
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
          // One readback for the total and every term: each readback waits for the GPU queue.
          const values = named ? await concat([total, ...named.map(([, t]) => t)].map((t) => reshape(t, [1])), 0).data() : [await total.item()];
          loss = values[0];
          if (named) terms = Object.fromEntries(named.map(([name], k) => [name, values[k + 1]]));
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
      const time = now();
      const outOfTime = time - started >= limitMs;
      // The first fit, once the window after the session's first step is measured (at a readback: the queue is done).
      if (pace && !outOfTime) {
        if (!pace.measuring) pace.begin(step + 1, time);
        else if (loss !== null && pace.stepMs === null && pace.windowDone(step + 1, time)) {
          this.fit(pace.measure(step + 1, time), limitMs - (time - started), maxMinutes, hooks);
        }
      }
      if (checkpointNow || outOfTime) {
        if (validateNow && hooks.validate) {
          const stop = await this.validate(hooks);
          if (stop) return stop;
        }
        // Refitted after each validation, before the save (its time as the last one took), so that the checkpoint holds
        // the schedule it continues; not at the last step, where the schedule has reached its end value and the run
        // ends (stretching it then would add steps at that value).
        const validated = pace && validateNow ? now() : time;
        if (pace && validateNow && hooks.validate) pace.validateMs = validated - time;
        if (pace && pace.stepMs !== null && validateNow && !outOfTime && step + 1 < steps) {
          this.fit(pace.measure(step + 1, time), limitMs - (validated - started) - pace.saveMs, maxMinutes, hooks);
        }
        addTime();
        const stop = await this.save(hooks, 'last');
        if (stop) return stop;
        if (pace) {
          const saved = now();
          pace.saveMs = saved - validated;
          pace.pause(saved - time);
        }
      }
      if (outOfTime && this.state.step < this.steps) return { reason: 'time', state: this.state };
    }
    return { reason: 'done', state: this.state };
  }

  /**
   * Fits the schedule to the `msLeft` milliseconds left at the measured pace, when the run's last step does not fit in
   * them, or (fitted already) leaves much of them unused; a change is reported.
   */
  private fit(pace: Pace, msLeft: number, maxMinutes: number, hooks: TrainHooks): void {
    const step = this.state.step;
    const reach = (share: number) => lastStepWithin(share * msLeft, step, this.options, pace);
    const current = this.steps;
    if (current <= reach(1) && (!this.state.fitted || current >= reach(1 - 2 * FIT_MARGIN))) return;
    const steps = Math.max(step + 1, reach(1 - FIT_MARGIN));
    if (steps === current) return;
    this.state = { ...this.state, fitted: { steps, from: step, position: this.planStep(step) } };
    const planned = this.options.steps;
    hooks.progress?.({ type: 'schedule', step, steps, planned, maxMinutes, stepsPerSecond: 1000 / pace.stepMs! });
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

/**
 * A session's pace, for fitting the schedule to its time limit: milliseconds per step, measured over windows of steps
 * less the checkpoints inside them, and the last validation and save times (0 until measured).
 */
class Pace {
  private window: { step: number; time: number; pausedMs: number } | null = null;
  stepMs: number | null = null;
  validateMs = 0;
  saveMs = 0;

  get measuring(): boolean {
    return this.window !== null;
  }

  begin(step: number, time: number): void {
    this.window = { step, time, pausedMs: 0 };
  }

  /** Whether the first window is long enough to estimate from. */
  windowDone(step: number, time: number): boolean {
    const w = this.window!;
    return step > w.step && (step - w.step >= FIT_WINDOW.steps || time - w.time >= FIT_WINDOW.ms);
  }

  /** Ends the window at `step`, done at `time`, into stepMs, and begins the next. */
  measure(step: number, time: number): this {
    const w = this.window!;
    if (step > w.step) this.stepMs = Math.max(time - w.time - w.pausedMs, 0) / (step - w.step);
    this.begin(step, time);
    return this;
  }

  pause(ms: number): void {
    if (this.window) this.window.pausedMs += ms;
  }
}

/**
 * The last step a run that has done `step` steps reaches in `ms` milliseconds at `pace`, with the validations and
 * saves on the way and the validation of that last step; `step` when not one more fits, at most options.steps.
 */
function lastStepWithin(ms: number, step: number, o: Pick<TrainOptions, 'steps' | 'validateEvery' | 'saveEvery'>, pace: Pick<Pace, 'stepMs' | 'validateMs' | 'saveMs'>): number {
  const validation = pace.validateMs + pace.saveMs;
  let spent = 0;
  let last = step;
  for (let t = step + 1; t <= o.steps; t++) {
    spent += pace.stepMs! + (t % o.validateEvery === 0 ? validation : t % o.saveEvery === 0 ? pace.saveMs : 0);
    if (spent > ms) break;
    if (spent + (t % o.validateEvery === 0 ? 0 : validation) <= ms) last = t;
  }
  return last;
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
