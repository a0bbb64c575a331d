// Progress on stderr. Training: a bar redrawn in place on a terminal; plain lines (at most one per 10 s, plus every
// validation) when the output is a file or CI log. A schedule fitted to the time limit is said once, when first
// fitted; refits show in the steps of the step line. Predict and eval: a bar per image (with the current image's tiles)
// on a terminal, nothing otherwise. Lines printed while a bar shows go above it.
import type { TrainEvent } from '../train/trainer.ts';

const BAR = 24;

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function stepLine(ev: Extract<TrainEvent, { type: 'step' }>): string {
  const terms = ev.terms ? ` (${Object.entries(ev.terms).map(([k, v]) => `${k} ${v.toPrecision(3)}`).join(', ')})` : '';
  const loss = ev.loss === null ? '?' : `${ev.loss.toPrecision(4)}${terms}`;
  const eta = duration((ev.steps - ev.step) / ev.stepsPerSecond);
  return `step ${ev.step}/${ev.steps}  loss ${loss}  lr ${ev.lr.toExponential(2)}  ${ev.stepsPerSecond.toFixed(2)} steps/s  eta ${eta}`;
}

function validationLine(ev: Extract<TrainEvent, { type: 'validation' }>): string {
  const scores = Object.entries(ev.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join('  ');
  return `validation at step ${ev.step}: ${scores}${ev.improved ? '  (best so far)' : ''}`;
}

function scheduleLine(ev: Extract<TrainEvent, { type: 'schedule' }>): string {
  return `schedule fitted to ${ev.steps} of ${ev.planned} steps for the ${Number(ev.maxMinutes.toPrecision(3))}-minute limit (${ev.stepsPerSecond.toFixed(2)} steps/s at step ${ev.step})`;
}

export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/**
 * A bar redrawn in place at the bottom of a terminal (nothing off a terminal): draw() replaces it, print() writes a
 * line above it, done() ends its line.
 */
function statusBar(stream: ProgressStream) {
  let bar = '';
  return {
    draw(fraction: number, text: string) {
      if (!stream.isTTY) return;
      const filled = Math.round(BAR * Math.min(1, Math.max(0, fraction)));
      bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${text}`.slice(0, (stream.columns ?? 120) - 1);
      stream.write(`\r\x1b[K${bar}`);
    },
    print(line: string) {
      if (bar) stream.write('\r\x1b[K');
      stream.write(line);
      if (bar) stream.write(bar);
    },
    done() {
      if (bar) stream.write('\n');
      bar = '';
    },
  };
}

/** A TrainHooks.progress for `stream`; call done() after training to end the bar's line. */
export function progressReporter(stream: ProgressStream, now = () => Date.now()) {
  const bar = statusBar(stream);
  let lastLine = -Infinity;
  let fitted = false;
  const report = (ev: TrainEvent) => {
    if (ev.type === 'checkpoint' || (ev.type === 'schedule' && fitted)) return;
    if (ev.type !== 'step') {
      if (ev.type === 'schedule') fitted = true;
      bar.print(`${ev.type === 'validation' ? validationLine(ev) : scheduleLine(ev)}\n`);
    } else if (stream.isTTY) {
      bar.draw(ev.step / ev.steps, stepLine(ev));
    } else if (now() - lastLine >= 10_000 || ev.step === ev.steps) {
      lastLine = now();
      stream.write(`${stepLine(ev)}\n`);
    }
  };
  return Object.assign(report, { done: bar.done });
}

/** Where a batch of images stands: image `index` (0-based) of `total`, and of its tiles `tiles.done` of `tiles.total`. */
export interface ImageProgress {
  index: number;
  total: number;
  name: string;
  tiles?: { done: number; total: number };
}

/**
 * Progress over the images of `wgseg predict` or `eval` on `stream`: on a terminal, a bar with the image, its tiles,
 * the images per second so far (or the time per image, below 0.1 per second) and the time left at that rate (parts of
 * an image count by its tiles); nothing otherwise. print() writes a line (a warning, a failure) above the bar; done() ends the bar's line.
 */
export function imageProgress(stream: ProgressStream, now = () => Date.now()) {
  const bar = statusBar(stream);
  const start = now();
  const report = ({ index, total, name, tiles }: ImageProgress) => {
    if (!stream.isTTY) return;
    const done = index + (tiles && tiles.total > 0 ? tiles.done / tiles.total : 0);
    const rate = done / ((now() - start) / 1000);
    const known = done > 0 && Number.isFinite(rate);
    const speed = !known ? '? images/s' : rate >= 0.1 ? `${rate.toFixed(2)} images/s` : `${duration(1 / rate)}/image`;
    const eta = known ? duration((total - done) / rate) : '?';
    const tile = tiles && tiles.total > 1 ? `  tile ${tiles.done}/${tiles.total}` : '';
    bar.draw(done / total, `image ${Math.min(index + 1, total)}/${total} ${name}${tile}  ${speed}  eta ${eta}`);
  };
  return Object.assign(report, { print: bar.print, done: bar.done });
}
