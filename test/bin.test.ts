// The `wgseg` process (bin/wgseg.js): Dawn's informational warnings leave the child's stderr however its chunks fall,
// every other line (Dawn's errors included) passes unchanged, and a partial line is held back only while it could
// still become a warning; the real command's stderr is what its child printed, without them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dawnWarningFilter } from '../bin/dawn-warnings.js';

const warning = (kind: string) =>
  `Warning: maxDynamic${kind}BuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n`;
const kept = [
  'Error: Vulkan instance creation failed\n',
  'Warning: maxDynamicStorageBuffersPerPipelineLayout is 16\n',
  `  indented ${warning('Uniform')}`,
  '\r\x1b[K[####......] step 3 of 10  loss 0.412\n',
];
const text = [warning('Uniform'), kept[0], warning('Storage'), kept[1], kept[2], warning('Storage'), kept[3]].join('');
const expected = kept.join('');

/** What the filter writes for `chunks`, each write separately. */
function filter(chunks: string[]): string[] {
  const writes: string[] = [];
  const f = dawnWarningFilter((t) => void writes.push(t));
  for (const c of chunks) f.push(c);
  f.end();
  return writes;
}

describe('dawnWarningFilter', () => {
  it('drops the warnings and keeps every other line, however the text is split', () => {
    expect(filter([text]).join('')).toBe(expected);
    expect(filter([...text]).join('')).toBe(expected);
    for (let i = 0; i <= text.length; i++) expect(filter([text.slice(0, i), text.slice(i)]).join(''), `split at ${i}`).toBe(expected);
  });

  it('passes a progress bar redrawn without a newline at once, and holds only what could become a warning', () => {
    const writes: string[] = [];
    const f = dawnWarningFilter((t) => void writes.push(t));
    f.push('\r\x1b[K[##........] step 1');
    expect(writes).toEqual(['\r\x1b[K[##........] step 1']);
    f.push('\nWarning: maxDyn');
    expect(writes).toEqual(['\r\x1b[K[##........] step 1', '\n']);
    f.push('amicStorage');
    f.end();
    expect(writes.join('')).toBe('\r\x1b[K[##........] step 1\nWarning: maxDynamicStorage');
  });
});

describe('the wgseg command', () => {
  it("prints its child's stderr without the warnings Dawn prints when it makes the engine", () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgseg-bin-'));
    try {
      const model = resolve('test/fixtures/embedseg-import/model.pth');
      const command = (out: string, env: NodeJS.ProcessEnv = {}) =>
        spawnSync(process.execPath, [resolve('bin/wgseg.js'), 'import', '--from', 'embedseg', model, '--out', join(dir, out)], {
          encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env },
        });
      // As the child: main() in this process, Dawn's native writes on its stderr as they are.
      const direct = command('direct', { WGSEG_CHILD_STDERR_COLUMNS: '' });
      const filtered = command('filtered');
      expect([direct.status, filtered.status]).toEqual([0, 0]);
      expect(filtered.stderr).toBe(filter([direct.stderr]).join(''));
      expect(filtered.stderr).not.toContain('artificially reduced');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
