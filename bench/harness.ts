// Times one op on both sides of the comparison in the same process, on the same adapter:
// - cold: the first call, pipeline compilation included;
// - steady: median over repeats of (K calls, then wait for the GPU) / K, after warm-up;
// - ours_gpu_ms: our kernels' GPU time from timestamp queries (sum over the op's dispatches), median of repeats.
import type { Engine } from '../src/index.ts';

/** One side's runnable op: `run` enqueues one execution; `sync` waits until everything enqueued has finished. */
export interface Runner {
  run: () => void;
  sync: () => Promise<void>;
  dispose: () => void;
}

export interface BenchCase {
  name: string;
  op: string;
  shape: string;
  /** Floating-point operations of one execution (2 per multiply-add). */
  flops: number;
  ours: (engine: Engine) => Runner;
  /** The same op through TensorFlow.js's WebGPU backend, or null where it has no such op. */
  peer: ((tf: typeof import('@tensorflow/tfjs-core')) => Runner) | null;
  /** What the peer does differently, if anything (e.g. "8 separate convs: tfjs has no groups"). */
  peerNote?: string;
}

export interface BenchResult {
  name: string;
  op: string;
  shape: string;
  flops: number;
  ours_ms: number;
  peer_ms: number | null;
  ours_cold_ms: number;
  peer_cold_ms: number | null;
  ours_gpu_ms: number | null;
  ours_gflops: number;
  peer_gflops: number | null;
  /** ours_gflops over our best matmul in the same run (the adapter's practical ceiling). */
  fraction_of_ceiling?: number;
  peer_note?: string;
}

export interface TimingOptions {
  /** Timed repeats (the median is reported). */
  repeats: number;
  /** Minimum wall time of one repeat; K grows until a repeat lasts this long. */
  minRepeatMs: number;
  warmup: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export async function timeRunner(r: Runner, opt: TimingOptions): Promise<{ cold: number; steady: number }> {
  let t0 = performance.now();
  r.run();
  await r.sync();
  const cold = performance.now() - t0;
  for (let i = 0; i < opt.warmup; i++) r.run();
  await r.sync();
  // Calls per repeat so that a repeat outlasts timer and submit noise.
  t0 = performance.now();
  r.run();
  await r.sync();
  const once = performance.now() - t0;
  const k = Math.max(1, Math.min(50, Math.ceil(opt.minRepeatMs / Math.max(once, 1e-3))));
  const times: number[] = [];
  for (let i = 0; i < opt.repeats; i++) {
    t0 = performance.now();
    for (let j = 0; j < k; j++) r.run();
    await r.sync();
    times.push((performance.now() - t0) / k);
  }
  return { cold, steady: median(times) };
}

/** Our GPU time per execution: the sum of the op's dispatch timestamps, median over repeats. */
export async function gpuTime(engine: Engine, r: Runner, repeats: number): Promise<number | null> {
  if (!engine.dispatcher.canTimestamp) return null;
  const totals: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const timings = await engine.profile(async () => {
      r.run();
      await r.sync();
    });
    totals.push(timings.reduce((s, t) => s + t.ms, 0));
  }
  return median(totals);
}

export function formatTable(results: BenchResult[]): string {
  const rows = [
    ['case', 'shape', 'ours ms', 'tfjs ms', 'ours GFLOP/s', 'tfjs GFLOP/s', 'speedup', 'of ceiling', 'ours cold ms', 'tfjs cold ms'],
    ...results.map((r) => [
      r.name,
      r.shape,
      r.ours_ms.toFixed(3),
      r.peer_ms === null ? '—' : r.peer_ms.toFixed(3),
      r.ours_gflops.toFixed(2),
      r.peer_gflops === null ? '—' : r.peer_gflops.toFixed(2),
      r.peer_ms === null ? '—' : `${(r.peer_ms / r.ours_ms).toFixed(2)}x`,
      r.fraction_of_ceiling === undefined ? '—' : `${Math.round(100 * r.fraction_of_ceiling)}%`,
      r.ours_cold_ms.toFixed(1),
      r.peer_cold_ms === null ? '—' : r.peer_cold_ms.toFixed(1),
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  return [line(rows[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}
