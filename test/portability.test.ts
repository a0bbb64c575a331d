// The engine, kernels and models must run unchanged in Deno and browsers: no Node built-ins and no Dawn binding
// ('webgpu') under those folders; Node-only code lives in src/node.ts. The same holds for the op checks (test/ops/)
// and the helpers the Deno and browser runners load with them. The portable checks that test:deno and test:browser
// run first are run here on Node's Dawn too (the op checks have their own test/NAME.test.ts files), so all three
// runtimes answer the same questions.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { opFamilies } from './ops/index.ts';
import { runPortableChecks } from './portable/checks.ts';
import { testEngine } from './support/engine.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
// The runtime-agnostic entry and the generated shader module it pulls in are held to the same rule, and so is the
// training pipeline (data, runs, training, prediction, metrics) but for its file I/O, the *-node.ts files.
const PORTABLE = ['src/engine', 'src/kernels', 'src/models', 'src/train', 'src/index.ts', 'src/shaders.gen.ts'];
const nodeOnlyFile = (path: string) => path.endsWith('-node.ts');
const NODE_ONLY = new Set([...builtinModules, 'webgpu']);

/** Module specifiers of static imports, re-exports, dynamic import() and require() in a source text. */
function importedModules(source: string): string[] {
  const patterns = [/\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  return patterns.flatMap((p) => [...source.matchAll(p)].map((m) => m[1]));
}

/** The specifiers that name a Node built-in (with or without `node:`, subpaths included) or the Dawn binding. */
function nodeOnlyImports(source: string): string[] {
  return importedModules(source).filter((s) => s.startsWith('node:') || NODE_ONLY.has(s.split('/')[0]) || NODE_ONLY.has(s));
}

/** Source files at `path` (a file, or a folder searched recursively); none when it does not exist yet. */
function sourceFiles(path: string): string[] {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return [];
  if (!stat.isDirectory()) return [path];
  return readdirSync(path).flatMap((name) => (statSync(join(path, name)).isDirectory() || /\.(ts|js|mjs)$/.test(name) ? sourceFiles(join(path, name)) : []));
}

describe('portability', () => {
  it('finds Node-only imports in every form', () => {
    const source = [
      "import { readFileSync } from 'node:fs';",
      "import path from 'path';",
      "import * as cp from 'child_process';",
      "export { create } from 'webgpu';",
      "import 'os';",
      "const u = await import('node:url');",
      "const f = require('fs/promises');",
      "import { Tensor } from './tensor.ts';",
      "import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';",
      "import type { X } from '../engine/engine.ts';",
    ].join('\n');
    expect(nodeOnlyImports(source)).toEqual(['node:fs', 'path', 'child_process', 'webgpu', 'os', 'node:url', 'fs/promises']);
  });

  it('src/engine, src/kernels, src/models, src/train (but *-node.ts) and src/index.ts import no Node built-in and not the Dawn binding', () => {
    const files = PORTABLE.flatMap((p) => sourceFiles(join(root, p))).filter((f) => !nodeOnlyFile(f));
    expect(files.length).toBeGreaterThan(0);
    const offenders = files.flatMap((f) => nodeOnlyImports(readFileSync(f, 'utf8')).map((s) => `${relative(root, f)} imports '${s}'`));
    expect(offenders).toEqual([]);
  });
});

/** The files of test/ that `entry` imports, directly or through other files of test/ (src/ is checked above). */
function testImports(entry: string): string[] {
  const seen = new Set<string>([entry]);
  for (const file of seen) {
    for (const s of importedModules(readFileSync(file, 'utf8'))) {
      const path = resolve(dirname(file), s);
      if (s.startsWith('.') && path.startsWith(join(root, 'test'))) seen.add(path);
    }
  }
  return [...seen];
}

describe('the op checks run unchanged in Deno and the browser', () => {
  it('what test/deno/checks.ts and test/browser/page.ts import from test/ imports no Node built-in and not vitest', () => {
    const files = [...new Set(['test/deno/checks.ts', 'test/browser/page.ts'].flatMap((f) => testImports(join(root, f))))];
    expect(files.length).toBeGreaterThan(20);
    const offenders = files.flatMap((f) =>
      importedModules(readFileSync(f, 'utf8'))
        .filter((s) => nodeOnlyImports(`import '${s}';`).length > 0 || s === 'vitest' || s.startsWith('@vitest/'))
        .map((s) => `${relative(root, f)} imports '${s}'`),
    );
    expect(offenders).toEqual([]);
  });

  it('every family of test/ops is in the index those runners run, and has its vitest file', () => {
    const families = readdirSync(join(root, 'test/ops')).filter((f) => f !== 'index.ts').map((f) => f.replace(/\.ts$/, ''));
    expect(Object.keys(opFamilies).sort()).toEqual(families.sort());
    expect(families.filter((f) => !statSync(join(root, `test/${f}.test.ts`), { throwIfNoEntry: false }))).toEqual([]);
  });
});

describe('portable checks on Node (Dawn)', () => {
  it('pass', async () => {
    const results = await runPortableChecks(await testEngine());
    expect(results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.detail}`)).toEqual([]);
    expect(results.length).toBeGreaterThan(3);
  });
});
