// The portable `expect` (test/support/expect.ts) that the op checks use outside vitest must pass and fail exactly
// where vitest's does, or moving a check out of vitest would weaken it.
import { describe, expect as vitestExpect, it } from 'vitest';
import { expect } from './support/expect.ts';

class Custom extends Error {}
const throwsCustom = () => {
  throw new Custom('conv: input has 3 channels, weight expects 4 (group=1)');
};

// [description, actual, matcher, arguments]: each runs through both implementations, with and without `.not`.
const cases: [string, unknown, string, unknown[]][] = [
  ['same number', 3, 'toBe', [3]],
  ['+0 and -0', 0, 'toBe', [-0]],
  ['NaN is NaN', NaN, 'toBe', [NaN]],
  ['equal arrays are not the same object', [1], 'toBe', [[1]]],
  ['arrays', [1, 2, 3], 'toEqual', [[1, 2, 3]]],
  ['arrays of different length', [1, 2], 'toEqual', [[1, 2, 3]]],
  ['-0 inside arrays', [0], 'toEqual', [[-0]]],
  ['NaN inside arrays', [NaN], 'toEqual', [[NaN]]],
  ['nested arrays', [[1, 2], [3]], 'toEqual', [[[1, 2], [3]]]],
  ['typed array against array', new Float32Array([1, 2]), 'toEqual', [[1, 2]]],
  ['typed arrays of different types', new Float32Array([1, 2]), 'toEqual', [new Int32Array([1, 2])]],
  ['typed arrays', new Int32Array([1, -2]), 'toEqual', [new Int32Array([1, -2])]],
  ['typed arrays that differ', new Int32Array([1, -2]), 'toEqual', [new Int32Array([1, 2])]],
  ['objects, undefined keys ignored', { a: 1, b: undefined }, 'toEqual', [{ a: 1 }]],
  ['objects that differ', { a: 1, b: [2] }, 'toEqual', [{ a: 1, b: [3] }]],
  ['objects with an extra key', { a: 1, b: 2 }, 'toEqual', [{ a: 1 }]],
  ['Sets in another order', new Set([7, 0]), 'toEqual', [new Set([0, 7])]],
  ['Sets that differ', new Set([7, 1]), 'toEqual', [new Set([0, 7])]],
  ['Maps of arrays', new Map([[1, [2, 3]], [4, [5]]]), 'toEqual', [new Map([[4, [5]], [1, [2, 3]]])]],
  ['Maps that differ', new Map([[1, [2, 3]]]), 'toEqual', [new Map([[1, [2, 4]]])]],
  ['null', null, 'toBeNull', []],
  ['undefined is not null', undefined, 'toBeNull', []],
  ['instance', new Int32Array(1), 'toBeInstanceOf', [Int32Array]],
  ['not an instance', new Float32Array(1), 'toBeInstanceOf', [Int32Array]],
  ['close to 2 digits', 0.304, 'toBeCloseTo', [0.3]],
  ['not close to 2 digits', 0.306, 'toBeCloseTo', [0.3]],
  ['close to 6 digits', 1.3000004, 'toBeCloseTo', [1.3, 6]],
  ['not close to 6 digits', 1.300001, 'toBeCloseTo', [1.3, 6]],
  ['infinities are close', Infinity, 'toBeCloseTo', [Infinity, 6]],
  ['greater', 2, 'toBeGreaterThan', [1]],
  ['not greater when equal', 1, 'toBeGreaterThan', [1]],
  ['greater or equal', 1, 'toBeGreaterThanOrEqual', [1]],
  ['less', 1e-6, 'toBeLessThan', [1e-5]],
  ['NaN is not less', NaN, 'toBeLessThan', [1e-5]],
  ['less or equal', 1, 'toBeLessThanOrEqual', [1]],
  ['throws with the substring', throwsCustom, 'toThrow', ['weight expects 4']],
  ['throws without the substring', throwsCustom, 'toThrow', ['weight expects 5']],
  ['throws matching the RegExp', throwsCustom, 'toThrow', [/has \d channels/]],
  ['throws the class', throwsCustom, 'toThrow', [Custom]],
  ['throws another class', throwsCustom, 'toThrow', [TypeError]],
  ['throws anything', throwsCustom, 'toThrow', []],
  ['does not throw', () => 1, 'toThrow', []],
];

function passes(run: () => void): boolean {
  try {
    run();
    return true;
  } catch {
    return false;
  }
}

type Matcher = (...args: unknown[]) => void;

describe('the portable expect agrees with vitest', () => {
  for (const [what, actual, matcher, args] of cases) {
    it(`${matcher}: ${what}`, () => {
      for (const not of [false, true]) {
        const pick = (assertion: object) => (not ? (assertion as { not: object }).not : assertion) as Record<string, Matcher>;
        const vitest = passes(() => pick(vitestExpect(actual))[matcher](...args));
        const ours = passes(() => pick(expect(actual))[matcher](...args));
        vitestExpect(ours, `${not ? 'not.' : ''}${matcher}`).toBe(vitest);
      }
    });
  }

  it('rejects.toThrow', async () => {
    await expect(Promise.reject(new Error('matmul: inner dimensions differ'))).rejects.toThrow('inner dimensions');
    await vitestExpect(expect(Promise.reject(new Error('matmul'))).rejects.toThrow('conv')).rejects.toThrow('to throw "conv"');
    await vitestExpect(expect(Promise.resolve(1)).rejects.toThrow()).rejects.toThrow('it resolved');
  });

  it('names the label and both values in its message', () => {
    vitestExpect(() => expect(0.25, 'forward relative error').toBeLessThan(1e-5)).toThrow('forward relative error: expected 0.25 to be less than 0.00001');
    vitestExpect(() => expect(new Float32Array(20)).toEqual([1])).toThrow('expected Float32Array [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, … (20 in all)] to deeply equal [1]');
  });
});
