// The types of bin/dawn-warnings.js, for the tests.
export function dawnWarningFilter(write: (text: string) => void): { push(chunk: string): void; end(): void };
