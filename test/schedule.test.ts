// Learning-rate schedules against hand-computed values.
import { describe, expect, it } from 'vitest';
import { constantLR, cosineDecay, polyDecay } from '../src/train/schedule.ts';

describe('schedules', () => {
  it('constantLR', () => {
    const s = constantLR(3e-4);
    expect([0, 1, 1e6].map(s)).toEqual([3e-4, 3e-4, 3e-4]);
  });

  it('cosineDecay from lr0 to lrMin (RDCNet: 1e-3 to 1e-5)', () => {
    const s = cosineDecay({ lr0: 1e-3, lrMin: 1e-5, steps: 100 });
    expect(s(0)).toBeCloseTo(1e-3, 15);
    // 1e-5 + 0.99e-3·(1 + cos(π/4))/2 = 1e-5 + 0.99e-3·0.853553390593
    expect(s(25)).toBeCloseTo(8.55017856687e-4, 15);
    expect(s(50)).toBeCloseTo(5.05e-4, 15);
    expect(s(100)).toBeCloseTo(1e-5, 15);
    expect(s(150)).toBeCloseTo(1e-5, 15);
  });

  it('cosineDecay with linear warmup counted within the steps', () => {
    const s = cosineDecay({ lr0: 0.1, steps: 110, warmup: 10 });
    expect([0, 5, 10, 60, 110].map((t) => Number(s(t).toFixed(15)))).toEqual([0, 0.05, 0.1, 0.05, 0]);
    // A quarter into the decay: 0.1·(1 + cos(π/4))/2
    expect(s(35)).toBeCloseTo(0.0853553390593, 12);
  });

  it('polyDecay (EmbedSeg: 5e-4·(1 − epoch/200)^0.9)', () => {
    const s = polyDecay({ lr0: 5e-4, steps: 200 });
    expect(s(0)).toBe(5e-4);
    // 0.5^0.9 = 0.535886731268
    expect(s(100)).toBeCloseTo(2.67943365634e-4, 15);
    expect(s(200)).toBe(0);
    expect(s(250)).toBe(0);
    expect(polyDecay({ lr0: 1, steps: 200, power: 1 })(50)).toBe(0.75);
    expect(polyDecay({ lr0: 1, steps: 200, power: 2 })(100)).toBe(0.25);
  });

  it('rejects bad step counts by name', () => {
    expect(() => cosineDecay({ lr0: 1, steps: 0 })).toThrow('cosineDecay: steps must be a positive integer, got 0');
    expect(() => cosineDecay({ lr0: 1, steps: 10, warmup: 10 })).toThrow('cosineDecay: warmup must be an integer in [0, steps = 10), got 10');
    expect(() => polyDecay({ lr0: 1, steps: 2.5 })).toThrow('polyDecay: steps must be a positive integer, got 2.5');
  });
});
