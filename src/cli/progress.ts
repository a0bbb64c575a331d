// Training progress on stderr: a bar redrawn in place on a terminal; plain lines (at most one per 10 s, plus every
// validation) when the output is a file or CI log. A schedule fitted to the time limit is said once, when first
// fitted; refits show in the steps of the step line.
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

/** A TrainHooks.progress for `stream`; call done() after training to end the bar's line. */
export function progressReporter(stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }, now = () => Date.now()) {
  let bar = '';
  let lastLine = -Infinity;
  let fitted = false;
  const clear = () => {
    if (bar) stream.write('\r\x1b[K');
  };
  const report = (ev: TrainEvent) => {
    if (ev.type === 'checkpoint' || (ev.type === 'schedule' && fitted)) return;
    if (ev.type !== 'step') {
      if (ev.type === 'schedule') fitted = true;
      clear();
      stream.write(`${ev.type === 'validation' ? validationLine(ev) : scheduleLine(ev)}\n`);
      if (bar) stream.write(bar);
      return;
    }
    if (stream.isTTY) {
      const filled = Math.round((BAR * ev.step) / ev.steps);
      bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${stepLine(ev)}`.slice(0, (stream.columns ?? 120) - 1);
      stream.write(`\r\x1b[K${bar}`);
    } else if (now() - lastLine >= 10_000 || ev.step === ev.steps) {
      lastLine = now();
      stream.write(`${stepLine(ev)}\n`);
    }
  };
  return Object.assign(report, {
    done: () => {
      if (bar) stream.write('\n');
      bar = '';
    },
  });
}
