// Parameter initializers: PyTorch's fans, and std and bounds checked statistically on ~74k samples (relative standard
// error of a std estimate ≈ 1/√(2n) ≈ 0.26%).
import { fans, heNormal, heUniform, leakyReluGain, type Tensor, xavierNormal, xavierUniform, zerosInit } from '../../src/index.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

async function stats(t: { data: () => Promise<ArrayLike<number>> }): Promise<{ mean: number; std: number; min: number; max: number }> {
  const v = await t.data();
  let sum = 0;
  let sq = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < v.length; i++) {
    sum += v[i];
    sq += v[i] * v[i];
    min = Math.min(min, v[i]);
    max = Math.max(max, v[i]);
  }
  const mean = sum / v.length;
  return { mean, std: Math.sqrt(sq / v.length - mean * mean), min, max };
}

const conv = [128, 64, 3, 3]; // fan_in 576, fan_out 1152

describe('fans', () => {
  it('follows PyTorch for linear and conv weights', () => {
    expect(fans([10, 20])).toEqual({ fanIn: 20, fanOut: 10 });
    expect(fans(conv)).toEqual({ fanIn: 576, fanOut: 1152 });
    // Grouped 3D conv: Cout 64, Cin/groups 8, kernel 1x3x3.
    expect(fans([64, 8, 1, 3, 3])).toEqual({ fanIn: 72, fanOut: 576 });
    expect(() => fans([5])).toThrow('init: fan in and fan out need a weight of at least 2 dimensions, got [5]');
  });

  it('gives the leaky-ReLU gain', () => {
    expect(leakyReluGain()).toBeCloseTo(Math.SQRT2, 12);
    expect(leakyReluGain(0.3)).toBeCloseTo(Math.sqrt(2 / 1.09), 12);
  });
});

describe('initializers', () => {
  it('heNormal: std gain/√fan_in, mean 0; slope, gain and fanOut mode change it', async (e) => {
    const cases: [Parameters<typeof heNormal>[3], number][] = [
      [{}, Math.sqrt(2 / 576)],
      [{ slope: 0.3 }, leakyReluGain(0.3) / Math.sqrt(576)],
      [{ gain: 1, mode: 'fanOut' }, 1 / Math.sqrt(1152)],
    ];
    for (const [options, std] of cases) {
      const w = heNormal(e, conv, 11, options);
      const s = await stats(w);
      expect(w.requiresGrad).toBe(true);
      expect(Math.abs(s.std / std - 1), JSON.stringify(options)).toBeLessThan(0.015);
      expect(Math.abs(s.mean)).toBeLessThan(0.02 * std);
      w.dispose();
    }
  });

  it('heUniform: within ±gain·√(3/fan_in), reaching near both ends', async (e) => {
    const bound = Math.sqrt(2) * Math.sqrt(3 / 576);
    const w = heUniform(e, conv, 12);
    const s = await stats(w);
    expect(s.min).toBeGreaterThanOrEqual(-bound);
    expect(s.max).toBeLessThan(bound);
    expect(Math.min(-s.min, s.max)).toBeGreaterThan(0.999 * bound);
    expect(Math.abs(s.std / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.015);
    w.dispose();
  });

  it('xavierNormal and xavierUniform: std gain·√(2/(fan_in + fan_out))', async (e) => {
    const linear = [300, 250];
    const std = 2 * Math.sqrt(2 / 550);
    const n = xavierNormal(e, linear, 13, 2);
    const u = xavierUniform(e, linear, 14, 2);
    const [sn, su] = [await stats(n), await stats(u)];
    expect(Math.abs(sn.std / std - 1)).toBeLessThan(0.015);
    expect(Math.abs(su.std / std - 1)).toBeLessThan(0.015);
    expect(Math.max(-su.min, su.max)).toBeLessThanOrEqual(std * Math.sqrt(3));
    expect(Math.max(-su.min, su.max)).toBeGreaterThan(0.999 * std * Math.sqrt(3));
    n.dispose();
    u.dispose();
  });

  it('returns parameters that outlive tidy; seeds reproduce; zerosInit is zero', async (e) => {
    const made: Tensor[] = [];
    e.tidy(() => {
      made.push(heNormal(e, [4, 3], 1), heNormal(e, [4, 3], 1), heNormal(e, [4, 3], 2), zerosInit(e, [5]));
    });
    expect(made.some((t) => t.isDisposed)).toBe(false);
    const [a, b, c, z] = made;
    const [va, vb, vc] = [await a.data(), await b.data(), await c.data()];
    expect(Array.from(va)).toEqual(Array.from(vb));
    expect(Array.from(va)).not.toEqual(Array.from(vc));
    expect(Array.from(await z.data())).toEqual([0, 0, 0, 0, 0]);
    expect(z.requiresGrad).toBe(true);
    expect(() => heNormal(e, [4, 0], 1)).toThrow('heNormal: weight [4, 0] has no inputs (fan is 0)');
    for (const t of [a, b, c, z]) t.dispose();
  });
});
