// Command-line parsing shared by the commands: node:util's parseArgs, with every problem a UsageError (exit code 2)
// that names the flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Bad command-line input: printed as one line after `wgseg COMMAND:`, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** What parse() returns for `options`: parseArgs's result, named so that the built declarations can spell it. */
type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O & { help: { type: 'boolean'; short: string } }; strict: true; allowPositionals: boolean }>
>;

/**
 * Parses `argv` against `options` (plus --help); unknown flags are UsageErrors, and so are arguments that are not
 * flags unless the command takes them (`allowPositionals`).
 */
export function parse<O extends Options>(command: string, argv: string[], options: O, allowPositionals = false): Parsed<O> {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals });
  } catch (e) {
    throw new UsageError(`${(e as Error).message} (see wgseg ${command} --help)`);
  }
}

/** A required string flag. */
export function required(command: string, values: Record<string, unknown>, flag: string): string {
  const v = values[flag];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${flag} is required (see wgseg ${command} --help)`);
  return v;
}

/** An optional positive integer flag. */
export function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${flag} must be a positive integer, got "${value}"`);
  return n;
}

/** An optional non-negative integer flag. */
export function nonNegativeInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${flag} must be a non-negative integer, got "${value}"`);
  return n;
}

/** An optional positive number flag. */
export function positiveNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a positive number, got "${value}"`);
  return n;
}

/** --spacing Y,X or Z,Y,X: positive numbers. */
export function spacingFlag(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(',').map(Number);
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => p > 0 && Number.isFinite(p))) {
    throw new UsageError(`--spacing must be Y,X or Z,Y,X positive numbers, got "${value}"`);
  }
  return parts;
}
