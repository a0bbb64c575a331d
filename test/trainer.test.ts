// The training loop on a tiny model: a resumed run ends bit-identical to an uninterrupted one, a NaN loss stops training
// and keeps the last good checkpoint, the best checkpoint follows the validation metric, and the time limit saves.
import { describe, expect, it } from 'vitest';
import { decodeSafetensors, scale, Trainer, type Checkpoint, type Engine, type TrainBatch, type TrainEvent, type TrainHooks } from '../src/index.ts';
import { testEngine } from './support/engine.ts';
import { TinyModel } from './support/fake-model.ts';

/** A batch that depends only on the step: 2 images of 2 channels, 4x4, with a foreground square. */
function batch(e: Engine, step: number): TrainBatch {
  const images = Float32Array.from({ length: 2 * 2 * 16 }, (_, i) => Math.sin(i * 0.7 + step));
  const labels = Int32Array.from({ length: 2 * 16 }, (_, i) => (i % 16 < 8 ? 1 : 0));
  return { images: e.tensor(images, [2, 2, 4, 4]), labels: e.tensor(labels, [2, 1, 4, 4]), spacing: [1, 1] };
}

/** Hooks that keep checkpoints in memory; `now` advances one minute per call when `clock` is given. */
function memoryHooks(e: Engine, extra: Partial<TrainHooks> = {}) {
  const saved: Checkpoint[] = [];
  const events: TrainEvent[] = [];
  const hooks: TrainHooks = {
    batch: (step) => batch(e, step),
    save: async (c) => void saved.push(c),
    progress: (ev) => void events.push(ev),
    ...extra,
  };
  return { hooks, saved, events, last: () => saved.filter((c) => c.which === 'last').at(-1) as Extract<Checkpoint, { which: 'last' }> };
}

const options = { steps: 8, batchSize: 2, lr: 0.05, lrMin: 0.001, logEvery: 2, validateEvery: 4, seed: 7 };
const makeModel = (e: Engine) => new TinyModel(e, { channels: 2, seed: 5, dropout: 0.25 });

describe('Trainer', () => {
  it('adds named loss terms, and reports each of them and their sum in the progress and the state', async () => {
    const e = await testEngine();
    const model = makeModel(e);
    const plain = model.loss.bind(model);
    // The same loss as two terms: the mean squared error, and half of it again.
    model.loss = ((b: TrainBatch, step: number) => {
      const mse = plain(b, step);
      return { mse, half: scale(mse, 0.5) };
    }) as unknown as TinyModel['loss'];
    const run = memoryHooks(e);
    const result = await new Trainer(model, options).run(run.hooks);
    const steps = run.events.filter((ev): ev is Extract<TrainEvent, { type: 'step' }> => ev.type === 'step');
    expect(steps.length).toBe(4);
    for (const ev of steps) {
      expect(Object.keys(ev.terms!)).toEqual(['mse', 'half']);
      expect(ev.terms!.half).toBeCloseTo(ev.terms!.mse / 2, 6);
      expect(ev.loss).toBeCloseTo(1.5 * ev.terms!.mse, 6);
    }
    expect(result.state.terms).toEqual(steps.at(-1)!.terms);
    model.dispose();
  });

  it('a run stopped by the time limit and resumed ends with the same parameters as an uninterrupted run', async () => {
    const e = await testEngine();
    const full = makeModel(e);
    const fullRun = memoryHooks(e);
    const result = await new Trainer(full, options).run(fullRun.hooks);
    expect(result.reason).toBe('done');
    expect(result.state.step).toBe(8);
    expect(result.state.optimizerSteps).toBe(8);

    // Interrupted: a clock that jumps a minute per reading stops the run after its third step.
    const first = makeModel(e);
    let minutes = 0;
    const partRun = memoryHooks(e, { now: () => 60_000 * minutes++ });
    const stopped = await new Trainer(first, options).run(partRun.hooks, { maxMinutes: 2.5 });
    expect(stopped.reason).toBe('time');
    const last = partRun.last();
    expect(last.state.step).toBeGreaterThan(0);
    expect(last.state.step).toBeLessThan(8);
    first.dispose();

    const resumed = makeModel(e);
    const trainer = new Trainer(resumed, options);
    trainer.restore(last.weights, last.optimizer, last.state, 'run');
    const rest = await trainer.run(memoryHooks(e).hooks);
    expect(rest.state.step).toBe(8);
    expect(rest.state.optimizerSteps).toBe(8);
    for (const name of ['weight', 'bias'] as const) expect(await resumed[name].data()).toEqual(await full[name].data());
    full.dispose();
    resumed.dispose();
  });

  it('reads the loss every logEvery steps, validates and saves every validateEvery steps, keeps the best', async () => {
    const e = await testEngine();
    const model = makeModel(e);
    const scores = [0.5, 0.4];
    const run = memoryHooks(e, { validate: async () => ({ f1: scores.shift()!, apDsb: 0 }) });
    await new Trainer(model, options).run(run.hooks);
    const steps = run.events.filter((ev) => ev.type === 'step');
    expect(steps.map((ev) => ev.step)).toEqual([2, 4, 6, 8]);
    for (const ev of steps) {
      expect(Number.isFinite(ev.loss)).toBe(true);
      expect(ev.stepsPerSecond).toBeGreaterThan(0);
    }
    expect(steps[0].lr).toBeCloseTo(0.001 + (0.049 * (1 + Math.cos((Math.PI * 1) / 8))) / 2, 9);
    expect(run.saved.map((c) => `${c.which}@${c.state.step}`)).toEqual(['best@4', 'last@4', 'last@8']);
    expect(run.last().state.best).toEqual({ metric: 'f1', value: 0.5, step: 4 });
    const best = decodeSafetensors(run.saved[0].weights);
    expect(best.metadata).toMatchObject({ kind: 'tiny', step: '4' });
    expect([...best.tensors.keys()].sort()).toEqual(['head.bias', 'head.running', 'head.weight']);
    expect(decodeSafetensors(run.last().optimizer).metadata).toEqual({ step: '8' });

    // saveEvery writes the last checkpoint between validations too, without validating there.
    const often = memoryHooks(e, { validate: async () => ({ f1: 0.1 }) });
    await new Trainer(makeModel(e), { ...options, saveEvery: 3 }).run(often.hooks);
    expect(often.saved.map((c) => `${c.which}@${c.state.step}`)).toEqual(['last@3', 'best@4', 'last@4', 'last@6', 'best@8', 'last@8']);
    expect(often.events.filter((ev) => ev.type === 'validation').map((ev) => ev.step)).toEqual([4, 8]);
    // Equal scores: the later checkpoint is best.
    expect(often.saved.filter((c) => c.which === 'best').map((c) => c.state.step)).toEqual([4, 8]);
    expect(often.last().state.best).toEqual({ metric: 'f1', value: 0.1, step: 8 });

    const unknown = memoryHooks(e, { validate: async () => ({ ap: 1 }) });
    await expect(new Trainer(makeModel(e), options).run(unknown.hooks)).rejects.toThrow('validation: no metric "f1" (bestMetric); there are ap');
    model.dispose();
  });

  it('stops on a NaN loss with a clear message and keeps the last good checkpoint', async () => {
    const e = await testEngine();
    const model = makeModel(e);
    const run = memoryHooks(e, {
      // From step 5 the images hold NaN: the loss read at step 6 is NaN.
      batch: (step) => {
        const b = batch(e, step);
        return step < 5 ? b : { ...b, images: e.fill(b.images.shape, NaN) };
      },
    });
    const result = await new Trainer(model, options).run(run.hooks);
    expect(result.reason).toBe('diverged');
    expect(result.message).toBe('training diverged: the loss is NaN at step 6; the last good checkpoint (step 4) is kept');
    expect(run.saved.map((c) => `${c.which}@${c.state.step}`)).toEqual(['last@4']);
    model.dispose();
  });

  it('stops when the weights turn NaN between loss readbacks, before writing them', async () => {
    const e = await testEngine();
    const model = makeModel(e);
    const run = memoryHooks(e, {
      batch: (step) => {
        const b = batch(e, step);
        return step !== 2 ? b : { ...b, images: e.fill(b.images.shape, Infinity) };
      },
    });
    const result = await new Trainer(model, { ...options, logEvery: 100 }).run(run.hooks);
    expect(result.reason).toBe('diverged');
    expect(result.message).toMatch(/^training diverged: (the loss is NaN at step 4|head.weight holds NaN\/Inf after step 4); no checkpoint was saved yet$/);
    expect(run.saved).toEqual([]);
    model.dispose();
  });

  it('keeps no tensor of a step alive: live tensors after 4 and after 12 steps are the same', async () => {
    const e = await testEngine();
    const live: number[] = [];
    for (const steps of [4, 12]) {
      const model = makeModel(e);
      const before = e.stats().liveTensors;
      const trainer = new Trainer(model, { ...options, steps, validateEvery: 4 });
      await trainer.run(memoryHooks(e).hooks);
      live.push(e.stats().liveTensors - before);
      trainer.optimizer.dispose();
      model.dispose();
    }
    expect(live[0]).toBe(4); // Adam's two moments for each of the two parameters
    expect(live[1]).toBe(live[0]);
  });

  it('follows the chosen schedule (cosine to lrMin, or EmbedSeg\'s poly to 0) and hands weight decay to Adam', async () => {
    const e = await testEngine();
    const model = makeModel(e);
    const cosine = new Trainer(model, { steps: 10, lr: 1e-3, lrMin: 1e-5 });
    expect(cosine.schedule(0)).toBeCloseTo(1e-3, 12);
    expect(cosine.schedule(10)).toBeCloseTo(1e-5, 12);
    const poly = new Trainer(model, { steps: 10, lr: 5e-4, schedule: 'poly', weightDecay: 1e-4 });
    expect(poly.schedule(5)).toBeCloseTo(5e-4 * 0.5 ** 0.9, 12);
    expect(poly.schedule(10)).toBe(0);
    expect(poly.optimizer.weightDecay).toBe(1e-4);
    for (const t of [cosine, poly]) t.optimizer.dispose();
    model.dispose();
  });

  it('checks options and resume files, naming what is wrong', async () => {
    const e = await testEngine();
    const model = makeModel(e);
    expect(() => new Trainer(model, { steps: 0 })).toThrow('training option steps must be a positive integer, got 0');
    expect(() => new Trainer(model, { stepz: 3 } as object)).toThrow('training option "stepz" is unknown');
    expect(() => new Trainer(model, { lr: 1e-5, lrMin: 1e-3 })).toThrow('lrMin <= lr');
    expect(() => new Trainer(model, { schedule: 'step' as never })).toThrow('schedule must be "cosine" or "poly", got "step"');
    expect(() => new Trainer(model, { weightDecay: -1 })).toThrow('weightDecay must be a number >= 0, got -1');
    const run = memoryHooks(e);
    await new Trainer(model, { ...options, steps: 4 }).run(run.hooks);
    const last = run.last();
    const trainer = new Trainer(makeModel(e), options);
    expect(() => trainer.restore(last.weights, last.optimizer, { ...last.state, step: 3 }, 'RUN')).toThrow(
      'RUN: last.safetensors (step 4), optimizer.safetensors (step 4) and state.json (step 3) disagree',
    );
    expect(() => trainer.restore(last.weights, last.optimizer, { ...last.state, seed: 1 }, 'RUN')).toThrow('RUN: state.json has seed 1, the config 7');
    model.dispose();
  });
});

describe('a schedule fitted to the time limit', () => {
  // 100 planned steps on a fake clock: 1 s a step (`slow` ms from the 31st on), 5 s a validation; saving takes no time.
  const fitOptions = { ...options, steps: 100, logEvery: 5, validateEvery: 20, saveEvery: 10 };
  function clocked(e: Engine, slow = 1000) {
    let clock = 0;
    const run = memoryHooks(e, {
      now: () => clock,
      batch: (step) => ((clock += step < 30 ? 1000 : slow), batch(e, step)),
      validate: async () => ((clock += 5000), { f1: 0.5 }),
    });
    return { ...run, clock: () => clock };
  }
  const scheduleEvents = (events: TrainEvent[]) => events.filter((ev) => ev.type === 'schedule');
  const stepEvents = (events: TrainEvent[]) => events.filter((ev) => ev.type === 'step');

  it('fits the steps that fit from the measured step rate, and ends at the end value on time', async () => {
    const e = await testEngine();
    const model = makeModel(e);
    const run = clocked(e);
    const trainer = new Trainer(model, fitOptions);
    const result = await trainer.run(run.hooks, { maxMinutes: 1, fitSchedule: true });
    // Measured over steps 1 to 25, less the validation at 20: 1 s a step. Of the 30 s left, 95% hold 18 steps and
    // the validations at 40 and after the last step: the schedule ends at step 43.
    expect(scheduleEvents(run.events)[0]).toEqual({ type: 'schedule', step: 25, steps: 43, planned: 100, maxMinutes: 1, stepsPerSecond: 1 });
    // At the validation of step 40, 43 steps would leave more than 10% of the 10 s left: refitted to 44.
    expect(scheduleEvents(run.events).slice(1)).toEqual([{ type: 'schedule', step: 40, steps: 44, planned: 100, maxMinutes: 1, stepsPerSecond: 1 }]);
    expect(result.reason).toBe('done');
    expect(result.state.step).toBe(44);
    expect(run.clock()).toBeLessThanOrEqual(60_000);
    expect(result.state.fitted).toEqual({ steps: 44, from: 40, position: expect.any(Number) });
    expect(trainer.lrAt(44)).toBeCloseTo(fitOptions.lrMin, 12);
    expect(result.state.lr).toBe(trainer.lrAt(43));
    expect(result.state.lr - fitOptions.lrMin).toBeLessThan(0.01 * (fitOptions.lr - fitOptions.lrMin));
    // The last step validates and saves.
    expect(run.events.filter((ev) => ev.type === 'validation').map((ev) => ev.step)).toEqual([20, 40, 44]);
    expect(run.last().state).toMatchObject({ step: 44, fitted: { steps: 44 } });
    // The step lines count to the fitted end.
    expect(stepEvents(run.events).map((ev) => `${ev.step}/${ev.steps}`).slice(4, 9)).toEqual(['25/100', '30/43', '35/43', '40/43', '44/44']);
    model.dispose();
  });

  it('decays monotonically through refits on a machine that slows down, and still ends on time', async () => {
    const e = await testEngine();
    const model = makeModel(e);
    const run = clocked(e, 2000);
    const trainer = new Trainer(model, { ...fitOptions, logEvery: 1 });
    const result = await trainer.run(run.hooks, { maxMinutes: 2, fitSchedule: true });
    // Fitted at step 21 at 1 s a step; from step 31 a step takes 2 s: the validations at 40 (19 steps in 29 s) and 60
    // shorten the schedule.
    expect(scheduleEvents(run.events).map((ev) => `${ev.steps}@${ev.step} ${ev.stepsPerSecond.toFixed(3)}/s`)).toEqual(['90@21 1.000/s', '70@40 0.655/s', '64@60 0.500/s']);
    expect(result).toMatchObject({ reason: 'done', state: { step: 64 } });
    expect(run.clock()).toBe(118_000);
    const lrs = stepEvents(run.events).map((ev) => ev.lr);
    expect(lrs).toHaveLength(64);
    for (let i = 1; i < lrs.length; i++) expect(lrs[i]).toBeLessThan(lrs[i - 1]);
    expect(trainer.lrAt(64)).toBeCloseTo(fitOptions.lrMin, 12);
    model.dispose();
  });

  it('ends at its fitted last step on a machine that speeds up, instead of stretching a finished schedule', async () => {
    // From step 31 a step takes 0.25 s: each refit lengthens the schedule, and the run reaches its last step with
    // time to spare. It must end there: a refit at the last step would stretch a schedule already at its end value
    // (the DSB2018 EmbedSeg run of 2026-12-04 went on for 481 steps at learning rate 0).
    const e = await testEngine();
    const model = makeModel(e);
    const run = clocked(e, 250);
    const trainer = new Trainer(model, { ...fitOptions, logEvery: 1 });
    const result = await trainer.run(run.hooks, { maxMinutes: 1, fitSchedule: true });
    const fits = scheduleEvents(run.events);
    expect(fits.length).toBeGreaterThan(1);
    expect(fits.every((ev) => ev.steps > ev.step + 1)).toBe(true);
    expect(result).toMatchObject({ reason: 'done', state: { step: fits.at(-1)!.steps } });
    const lrs = stepEvents(run.events).map((ev) => ev.lr);
    for (let i = 1; i < lrs.length; i++) expect(lrs[i]).toBeLessThan(lrs[i - 1]);
    expect(trainer.lrAt(result.state.step)).toBeCloseTo(fitOptions.lrMin, 12);
    model.dispose();
  });

  it('is kept by a resumed run, which ends with the parameters of the uninterrupted one', async () => {
    const e = await testEngine();
    const whole = makeModel(e);
    const wholeRun = clocked(e);
    const result = await new Trainer(whole, fitOptions).run(wholeRun.hooks, { maxMinutes: 1, fitSchedule: true });
    const saved = wholeRun.saved.filter((c) => c.which === 'last') as Extract<Checkpoint, { which: 'last' }>[];
    const at30 = saved.find((c) => c.state.step === 30)!;
    expect(at30.state.fitted).toEqual({ steps: 43, from: 25, position: 25 });

    // Resumed without a time limit, a run follows the fit saved with its checkpoint: from step 40's (refitted to 44), it
    // ends with the uninterrupted run's parameters; from step 30's, at 43.
    const at40 = saved.find((c) => c.state.step === 40)!;
    expect(at40.state.fitted).toMatchObject({ steps: 44, from: 40 });
    const resumed = makeModel(e);
    const trainer = new Trainer(resumed, fitOptions);
    trainer.restore(at40.weights, at40.optimizer, at40.state, 'run');
    const rest = await trainer.run(memoryHooks(e).hooks);
    expect(rest).toMatchObject({ reason: 'done', state: { step: 44, lr: result.state.lr, fitted: result.state.fitted } });
    for (const name of ['weight', 'bias'] as const) expect(await resumed[name].data()).toEqual(await whole[name].data());

    const from30 = new Trainer(makeModel(e), fitOptions);
    from30.restore(at30.weights, at30.optimizer, at30.state, 'run');
    const events: TrainEvent[] = [];
    expect((await from30.run({ ...memoryHooks(e).hooks, progress: (ev) => void events.push(ev) })).state.step).toBe(43);
    expect(from30.lrAt(43)).toBeCloseTo(fitOptions.lrMin, 12);
    expect(scheduleEvents(events)).toEqual([]);

    // A corrupt fit is refused by name.
    expect(() => new Trainer(makeModel(e), fitOptions).restore(at40.weights, at40.optimizer, { ...at40.state, fitted: { steps: 400, from: 40, position: 40 } }, 'RUN'))
      .toThrow(`RUN: state.json's fitted schedule {"steps":400,"from":40,"position":40} does not fit the config's 100 steps`);
    whole.dispose();
    resumed.dispose();
  });

  it('changes nothing without a limit, when everything fits, with fitSchedule false, or by default', async () => {
    const e = await testEngine();
    const runs: { limit: number | undefined; fit: boolean | undefined }[] = [
      { limit: undefined, fit: true },
      { limit: 10, fit: true },
      { limit: 1, fit: false },
      { limit: 1, fit: undefined },
    ];
    const ends: Record<string, unknown>[] = [];
    for (const { limit, fit } of runs) {
      const model = makeModel(e);
      const run = clocked(e);
      const trainer = new Trainer(model, { ...fitOptions, logEvery: 1 });
      const result = await trainer.run(run.hooks, { maxMinutes: limit, fitSchedule: fit });
      expect(scheduleEvents(run.events)).toEqual([]);
      expect(result.state.fitted).toBeUndefined();
      expect('fitted' in result.state).toBe(false);
      for (const ev of stepEvents(run.events)) expect(ev.lr).toBe(trainer.schedule(ev.step - 1));
      ends.push({ reason: result.reason, step: result.state.step });
      model.dispose();
    }
    // Without fitting, the limit stops the run in the middle of its schedule.
    expect(ends).toEqual([{ reason: 'done', step: 100 }, { reason: 'done', step: 100 }, { reason: 'time', step: 50 }, { reason: 'time', step: 50 }]);
  });
});
