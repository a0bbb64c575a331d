// Kernel shapes that different adapters reward differently: a CPU adapter (lavapipe: a workgroup is one thread, its
// invocations SIMD lanes) wants few, large workgroups; a discrete GPU wants enough workgroups to fill its
// multiprocessors. Each engine holds one Tuning (DEFAULT_TUNING unless changed); kernels read it when they size a
// dispatch and pass it to WGSL as override constants. Benchmarks change it to compare shapes on one
// adapter (WGSEG_TUNING in Node, README "Benchmarks").

export interface Tuning {
  /** matmul: outputs per invocation along M and along N (a BLOCK x BLOCK register block). */
  matmulBlock: 4 | 8;
  /** matmul: the output tile side of a workgroup (halved along a dimension no longer than half of it). */
  matmulTile: 32 | 64 | 128;
  /** Convolution weight gradient: K (batch x output pixels) splits across workgroups until about this many run. */
  convWeightGradWorkgroups: number;
}

/**
 * The defaults, measured on lavapipe: 8x8 blocks beat 4x4 by 1.3-1.8x and 128-wide tiles beat 64 (tile reads
 * dominate), and 256 weight-gradient workgroups ran 1.4x slower than 32. Discrete GPUs get the same until measured
 * there (scripts/device/tune.sh sweeps the alternatives on one).
 */
export const DEFAULT_TUNING: Readonly<Tuning> = Object.freeze({ matmulBlock: 8, matmulTile: 128, convWeightGradWorkgroups: 128 });

const allowed: { [K in keyof Tuning]: (v: number) => boolean } = {
  matmulBlock: (v) => v === 4 || v === 8,
  matmulTile: (v) => v === 32 || v === 64 || v === 128,
  convWeightGradWorkgroups: (v) => Number.isInteger(v) && v >= 1 && v <= 65535,
};
const expected: { [K in keyof Tuning]: string } = {
  matmulBlock: '4 or 8',
  matmulTile: '32, 64 or 128',
  convWeightGradWorkgroups: 'an integer from 1 to 65535',
};

/** Checks a partial tuning; throws naming the first bad key or value. */
export function checkTuning(t: Partial<Record<string, unknown>>): Partial<Tuning> {
  for (const [key, value] of Object.entries(t)) {
    if (!Object.hasOwn(allowed, key)) throw new Error(`tuning: unknown key '${key}' (known: ${Object.keys(allowed).join(', ')})`);
    const k = key as keyof Tuning;
    if (typeof value !== 'number' || !allowed[k](value)) throw new Error(`tuning: ${key} must be ${expected[k]}, got ${String(value)}`);
  }
  return t as Partial<Tuning>;
}

/** `key=value,key=value` (WGSEG_TUNING) as a partial tuning. */
export function parseTuning(text: string): Partial<Tuning> {
  const t: Record<string, number> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\w+)=(.+)$/.exec(part);
    if (!m) throw new Error(`tuning: '${part}' is not key=value`);
    const v = Number(m[2]);
    if (m[2].trim() === '' || !Number.isFinite(v)) throw new Error(`tuning: ${m[1]} must be a number, got '${m[2]}'`);
    t[m[1]] = v;
  }
  return checkTuning(t);
}

/** Throws unless `t`'s workgroups fit the device: the matmul's is (tile / block)² invocations. */
export function checkTuningFits(t: Tuning, limits: GPUSupportedLimits): void {
  const side = t.matmulTile / t.matmulBlock;
  const most = Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX ** 2, limits.maxComputeWorkgroupSizeY ** 2);
  if (side * side > most) {
    throw new Error(`tuning: matmulTile ${t.matmulTile} with matmulBlock ${t.matmulBlock} needs ${side}×${side} invocations per workgroup; this device allows ${most}`);
  }
}
