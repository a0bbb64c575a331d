// The subset of vitest's `expect` that the op checks use, with vitest's semantics (toEqual: Object.is on primitives,
// same class, undefined-valued keys ignored; toBeCloseTo: |a − b| < 10^−digits / 2; toThrow: substring, RegExp or
// class), throwing plain Errors, so that the same checks run under vitest, in Deno and in a browser page.

type Matchers = {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toBeNull(): void;
  toBeInstanceOf(expected: abstract new (...args: never[]) => unknown): void;
  toBeCloseTo(expected: number, digits?: number): void;
  toBeGreaterThan(expected: number): void;
  toBeGreaterThanOrEqual(expected: number): void;
  toBeLessThan(expected: number): void;
  toBeLessThanOrEqual(expected: number): void;
  toThrow(expected?: string | RegExp | (abstract new (...args: never[]) => unknown)): void;
};

export type Assertion = Matchers & {
  not: Matchers;
  /** The matchers applied to what a promise rejects with: only toThrow. */
  rejects: { toThrow: (expected?: string | RegExp) => Promise<void> };
};

/** `expect(actual, label?)`: each matcher throws an Error that names the label, the expectation and both values. */
export function expect(actual: unknown, label?: string): Assertion {
  const fail = (text: string): never => {
    throw new Error(label ? `${label}: ${text}` : text);
  };
  const matchers = (negate: boolean): Matchers => {
    const check = (pass: boolean, what: string, expected?: unknown, showExpected = true) => {
      if (pass === negate) fail(`expected ${show(actual)} ${negate ? 'not ' : ''}${what}${showExpected ? ` ${show(expected)}` : ''}`);
    };
    const number = (expected: number, what: string, pass: (a: number) => boolean) => {
      if (typeof actual !== 'number') fail(`expected a number ${what} ${expected}, got ${show(actual)}`);
      check(pass(actual as number), what, expected);
    };
    return {
      toBe: (expected) => check(Object.is(actual, expected), 'to be', expected),
      toEqual: (expected) => check(equals(actual, expected), 'to deeply equal', expected),
      toBeNull: () => check(actual === null, 'to be null', undefined, false),
      toBeInstanceOf: (expected) => check(actual instanceof expected, `to be an instance of ${expected.name}`, undefined, false),
      toBeCloseTo: (expected, digits = 2) =>
        number(expected, `to be close to (${digits} digits)`, (a) => (Math.abs(expected) === Infinity ? a === expected : Math.abs(expected - a) < 10 ** -digits / 2)),
      toBeGreaterThan: (expected) => number(expected, 'to be greater than', (a) => a > expected),
      toBeGreaterThanOrEqual: (expected) => number(expected, 'to be greater than or equal to', (a) => a >= expected),
      toBeLessThan: (expected) => number(expected, 'to be less than', (a) => a < expected),
      toBeLessThanOrEqual: (expected) => number(expected, 'to be less than or equal to', (a) => a <= expected),
      toThrow: (expected) => {
        if (typeof actual !== 'function') fail(`toThrow needs a function, got ${show(actual)}`);
        let thrown: { error: unknown } | null = null;
        try {
          (actual as () => unknown)();
        } catch (error) {
          thrown = { error };
        }
        checkThrown(thrown, expected, negate, fail);
      },
    };
  };
  return Object.assign(matchers(false), {
    not: matchers(true),
    rejects: {
      toThrow: async (expected?: string | RegExp) => {
        if (!(actual instanceof Promise)) fail(`rejects needs a promise, got ${show(actual)}`);
        let thrown: { error: unknown } | null = null;
        try {
          await actual;
        } catch (error) {
          thrown = { error };
        }
        if (!thrown) fail('expected the promise to reject, but it resolved');
        checkThrown(thrown, expected, false, fail);
      },
    },
  });
}

function checkThrown(
  thrown: { error: unknown } | null,
  expected: string | RegExp | (abstract new (...args: never[]) => unknown) | undefined,
  negate: boolean,
  fail: (text: string) => never,
): void {
  const message = thrown ? (thrown.error instanceof Error ? thrown.error.message : String(thrown.error)) : '';
  const pass =
    thrown !== null &&
    (expected === undefined ||
      (typeof expected === 'string' ? message.includes(expected) : expected instanceof RegExp ? expected.test(message) : thrown.error instanceof expected));
  if (pass === negate) {
    const wanted = expected === undefined ? 'to throw' : `to throw ${typeof expected === 'function' ? expected.name : show(expected)}`;
    fail(`expected the function ${negate ? 'not ' : ''}${wanted}, ${thrown ? `it threw ${show(message)}` : 'it did not throw'}`);
  }
}

/**
 * vitest's toEqual: Object.is on primitives, the same class on both sides, element-wise arrays and typed arrays, Sets
 * and Maps regardless of order, and objects by their defined own keys.
 */
function equals(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const kind = Object.prototype.toString.call(a);
  if (kind !== Object.prototype.toString.call(b)) return false;
  if (ArrayBuffer.isView(a) || Array.isArray(a)) {
    const [x, y] = [a as unknown as ArrayLike<unknown>, b as unknown as ArrayLike<unknown>];
    if (a.constructor !== b.constructor || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!equals(x[i], y[i])) return false;
    return true;
  }
  if (a instanceof Set) {
    const y = b as Set<unknown>;
    return a.size === y.size && [...a].every((v) => y.has(v) || [...y].some((w) => equals(v, w)));
  }
  if (a instanceof Map) {
    const y = b as Map<unknown, unknown>;
    return a.size === y.size && [...a].every(([k, v]) => (y.has(k) ? equals(v, y.get(k)) : [...y].some(([l, w]) => equals(k, l) && equals(v, w))));
  }
  if (a instanceof Error) throw new Error('expect: toEqual does not compare Errors here');
  const defined = (o: object) => Object.keys(o).filter((k) => (o as Record<string, unknown>)[k] !== undefined);
  const [ka, kb] = [defined(a), defined(b)];
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && equals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** A value for a message: numbers exactly, long arrays (and Sets, Maps) cut after 16 elements. */
function show(v: unknown): string {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null || typeof v !== 'object') return String(v);
  if (v instanceof RegExp) return String(v);
  if (ArrayBuffer.isView(v) || Array.isArray(v) || v instanceof Set || v instanceof Map) {
    const items = Array.from(v as unknown as Iterable<unknown>);
    const shown = items.slice(0, 16).map(show).join(', ') + (items.length > 16 ? `, … (${items.length} in all)` : '');
    return `${Array.isArray(v) ? '' : `${v.constructor.name} `}[${shown}]`;
  }
  try {
    return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}n` : ArrayBuffer.isView(x) ? Array.from(x as unknown as ArrayLike<number>) : x));
  } catch {
    return String(v);
  }
}
