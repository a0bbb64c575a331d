// The training progress display: a bar redrawn in place on a terminal, rate-limited plain lines otherwise.
import { describe, expect, it } from 'vitest';
import { imageProgress, progressReporter } from '../src/cli/progress.ts';

function stream(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, columns: 200, write: (s: string) => chunks.push(s) > 0, chunks } as unknown as NodeJS.WritableStream & { isTTY: boolean; chunks: string[] };
}

const step = (n: number, loss: number | null = 0.5, terms: Record<string, number> | null = null) =>
  ({ type: 'step' as const, step: n, steps: 100, loss, terms, lr: 1e-3, stepsPerSecond: 2 });

describe('progressReporter', () => {
  it('redraws one bar on a terminal and prints validations on their own lines', () => {
    const out = stream(true);
    const report = progressReporter(out);
    report(step(10));
    report(step(50, 0.25));
    report({ type: 'validation', step: 50, metrics: { f1: 0.8, apDsb: 0.5 }, improved: true });
    report.done();
    expect(out.chunks[0]).toBe('\r\x1b[K[##......................] step 10/100  loss 0.5000  lr 1.00e-3  2.00 steps/s  eta 45s');
    expect(out.chunks[1]).toBe('\r\x1b[K[############............] step 50/100  loss 0.2500  lr 1.00e-3  2.00 steps/s  eta 25s');
    expect(out.chunks.slice(2)).toEqual([
      '\r\x1b[K', 'validation at step 50: f1 0.8000  apDsb 0.5000  (best so far)\n', out.chunks[1].slice(4), '\n',
    ]);
  });

  it('shows named loss terms after the total', () => {
    const out = stream(false);
    const report = progressReporter(out, () => 0);
    report(step(100, 0.75, { heatmap: 0.5, size: 0.25 }));
    expect(out.chunks[0]).toBe('step 100/100  loss 0.7500 (heatmap 0.500, size 0.250)  lr 1.00e-3  2.00 steps/s  eta 0s\n');
  });

  it('prints plain lines at most every 10 s (and the last step) when not a terminal', () => {
    const out = stream(false);
    let t = 0;
    const report = progressReporter(out, () => t);
    for (let n = 1; n <= 100; n++) {
      t = n * 1000;
      report(step(n));
    }
    expect(out.chunks.map((c) => c.split(' ')[1])).toEqual(['1/100', '11/100', '21/100', '31/100', '41/100', '51/100', '61/100', '71/100', '81/100', '91/100', '100/100']);
    expect(out.chunks.every((c) => !c.includes('\r') && c.endsWith('\n'))).toBe(true);
  });

  it('says once, on its own line, that the schedule was fitted to the time limit', () => {
    const out = stream(true);
    const report = progressReporter(out);
    const fit = (n: number, steps: number) => ({ type: 'schedule' as const, step: n, steps, planned: 2000, maxMinutes: 15, stepsPerSecond: 0.68 });
    report(step(20));
    report(fit(21, 612));
    report(fit(200, 590));
    report.done();
    expect(out.chunks.slice(1, 3)).toEqual(['\r\x1b[K', 'schedule fitted to 612 of 2000 steps for the 15-minute limit (0.68 steps/s at step 21)\n']);
    expect(out.chunks.slice(3)).toEqual([out.chunks[0].slice(4), '\n']);
  });
});

describe('imageProgress', () => {
  it('draws image i of N, its tiles, the rate and the time left on a terminal; lines go above the bar', () => {
    const out = stream(true);
    let t = 0;
    const report = imageProgress(out, () => t);
    report({ index: 0, total: 4, name: 'a' });
    t = 2000;
    report({ index: 0, total: 4, name: 'a', tiles: { done: 2, total: 4 } });
    t = 4000;
    report({ index: 1, total: 4, name: 'b' });
    report.print('warning: b is odd\n');
    t = 400_000;
    report({ index: 3, total: 4, name: 'd', tiles: { done: 1, total: 1 } });
    report.done();
    expect(out.chunks).toEqual([
      '\r\x1b[K[........................] image 1/4 a  ? images/s  eta ?',
      '\r\x1b[K[###.....................] image 1/4 a  tile 2/4  0.25 images/s  eta 14s',
      '\r\x1b[K[######..................] image 2/4 b  0.25 images/s  eta 12s',
      '\r\x1b[K', 'warning: b is odd\n', '[######..................] image 2/4 b  0.25 images/s  eta 12s',
      '\r\x1b[K[########################] image 4/4 d  1m40s/image  eta 0s',
      '\n',
    ]);
  });

  it('is quiet when not a terminal, but still prints lines', () => {
    const out = stream(false);
    const report = imageProgress(out, () => 0);
    report({ index: 0, total: 2, name: 'a', tiles: { done: 1, total: 2 } });
    report.print('wgseg predict: a.tif: empty file\n');
    report.done();
    expect(out.chunks).toEqual(['wgseg predict: a.tif: empty file\n']);
  });
});
