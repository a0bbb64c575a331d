// `npm run test:package`: wgseg as its users get it. Packs the package (prepack builds dist/), checks that the tarball
// holds only what users need, installs it into a fresh project outside the repository, and there: type-checks a
// TypeScript program against its declarations, runs test/package/consumer.mjs (plain JavaScript: train a tiny model,
// predict, dispose) on Node and in Deno, and runs the `wgseg` command through npx. Ends with
// `package: N passed, M failed`. Checks that need an earlier one that failed are not run (that one fails the run).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CheckResult } from '../portable/checks.ts';
import { printResults } from '../portable/report.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
const started = Date.now();
const work = mkdtempSync(join(tmpdir(), 'wgseg-package-'));
const project = join(work, 'project');
const results: CheckResult[] = [];

// The commands run as a user's would: without the settings `npm run` hands its scripts (npm_config_loglevel...).
const env = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('npm_'))), NO_COLOR: '1' };

/** A command's output, and `failure` when it could not start, ran out of time or exited non-zero. */
function run(command: string, args: string[], cwd: string, timeoutMs = 300_000) {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20, env });
  const failure = r.error ? `${command} could not run: ${r.error.message}` : r.status !== 0 ? `${command} ${args.join(' ')} exited with ${r.status ?? r.signal}` : null;
  return { failure, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const tail = (text: string, lines = 15) => text.trim().split('\n').slice(-lines).join('\n');

/** Runs a check; one that throws fails with its message. Returns whether it passed. */
function check(name: string, body: () => { ok: boolean; detail: string }): boolean {
  const t0 = Date.now();
  console.log(`== ${name}`);
  let result: { ok: boolean; detail: string };
  try {
    result = body();
  } catch (e) {
    result = { ok: false, detail: e instanceof Error ? e.message : String(e) };
  }
  results.push({ name, ...result, ms: Date.now() - t0 });
  return result.ok;
}

/** Hard links of a folder's files (copies across file systems), symbolic links kept. */
function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const [src, dest] = [join(from, entry.name), join(to, entry.name)];
    if (entry.isDirectory()) linkTree(src, dest);
    else if (entry.isSymbolicLink()) symlinkSync(readlinkSync(src), dest);
    else {
      try {
        linkSync(src, dest);
      } catch {
        copyFileSync(src, dest);
      }
    }
  }
}

/** The last line of `stdout`, parsed: consumer.mjs's summary. */
function summary(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
}

/** consumer.mjs's summary is a finished tiny run that predicted a whole image and freed what prediction made. */
function consumerRan(r: ReturnType<typeof run>): { ok: boolean; detail: string } {
  if (r.failure) return { ok: false, detail: `${r.failure}:\n${tail(r.stderr || r.stdout)}` };
  const s = summary(r.stdout);
  const ok = s.reason === 'done' && s.steps === 3 && typeof s.loss === 'number' && s.pixels === 32 * 32 && s.predictLeft === 0;
  return { ok, detail: JSON.stringify(s) };
}

const allowed = /^package\/(dist\/.+\.(js|d\.ts)|bin\/[\w-]+\.js|package\.json|README\.md|LICENSE)$/;
const required = ['dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/node.d.ts', 'dist/cli/main.js', 'bin/wgseg.js', 'bin/dawn-warnings.js'];

try {
  let tarball = '';
  const packed = check('npm pack (prepack builds dist/)', () => {
    const r = run('npm', ['pack', '--pack-destination', work], root);
    if (r.failure) return { ok: false, detail: `${r.failure}:\n${tail(r.stderr || r.stdout)}` };
    tarball = join(work, r.stdout.trim().split('\n').at(-1)!);
    return { ok: existsSync(tarball), detail: tarball };
  });

  if (packed) {
    check('the tarball holds dist/, bin/, package.json and README only', () => {
      const r = run('tar', ['-tzf', tarball], work);
      if (r.failure) return { ok: false, detail: r.failure };
      const files = r.stdout.trim().split('\n');
      const stray = files.filter((f) => !allowed.test(f));
      const missing = required.filter((f) => !files.includes(`package/${f}`));
      const problems = [...stray.slice(0, 10).map((f) => `unexpected ${f}`), ...missing.map((f) => `missing ${f}`)];
      return { ok: problems.length === 0, detail: problems.join(', ') || `${files.length} files` };
    });
  }

  // CI may have no network, and after an install from the lockfile npm's cache holds no registry metadata to resolve
  // the tarball's dependencies with. So the project starts with the repository's installed copies of them (hard
  // links; the production packages of package-lock.json), which npm keeps since they satisfy the ranges: `npm install`
  // adds the tarball alone, and any dependency the package needs but does not declare stays missing.
  const installed = packed && check('npm install of the tarball into a fresh project, offline', () => {
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'wgseg-consumer', private: true, type: 'module' }, null, 2)}\n`);
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
    for (const [path, p] of Object.entries(lock.packages)) {
      const top = /^node_modules\/(@[^/]+\/)?[^/]+$/.test(path);
      if (top && !p.dev && !p.devOptional && existsSync(join(root, path))) linkTree(join(root, path), join(project, path));
    }
    const r = run('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund'], project);
    if (r.failure) return { ok: false, detail: `${r.failure}:\n${tail(r.stderr || r.stdout)}` };
    const ok = existsSync(join(project, 'node_modules/wgseg/dist/index.js')) && existsSync(join(project, 'node_modules/.bin/wgseg'));
    return { ok, detail: tail(r.stdout, 1) };
  });

  if (installed) {
    copyFileSync(fileURLToPath(new URL('consumer.mjs', import.meta.url)), join(project, 'consumer.mjs'));

    check('TypeScript: a program type-checks against the declarations (strict, nodenext, no skipLibCheck)', () => {
      writeFileSync(join(project, 'typed.ts'), [
        "import { createNodeEngine, type Engine } from 'wgseg/node';",
        "import { add, registry, type Tensor } from 'wgseg';",
        'const e: Engine = await createNodeEngine();',
        'const t: Tensor = add(e.tensor([1, 2], [2]), e.tensor([3, 4], [2]));',
        'const values: Float32Array | Int32Array | Uint32Array = await t.data();',
        'console.log(values, Object.keys(registry.factories), e.device.limits.maxBufferSize);',
        'e.destroy();',
        '',
      ].join('\n'));
      const compilerOptions = {
        strict: true, target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', noEmit: true,
        types: ['node'], typeRoots: [join(root, 'node_modules/@types')],
      };
      writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['typed.ts'] }));
      const r = run(bin('tsc'), ['-p', '.'], project);
      return { ok: !r.failure, detail: r.failure ? `${r.failure}:\n${tail(r.stdout)}` : 'no errors' };
    });

    mkdirSync(join(project, 'run'));
    const trained = check('node: plain JavaScript imports wgseg/node, trains a tiny RDCNet, predicts, disposes', () =>
      consumerRan(run(process.execPath, ['consumer.mjs', 'run'], project)),
    );

    check('npx wgseg --help', () => {
      const r = run('npx', ['--offline', 'wgseg', '--help'], project);
      const ok = !r.failure && r.stdout.startsWith('wgseg: biomedical instance segmentation');
      return { ok, detail: ok ? tail(r.stdout, 1) : `${r.failure ?? 'unexpected help'}:\n${tail(r.stdout + r.stderr)}` };
    });

    if (trained) {
      check("npx wgseg predict with the node run: labels, and no Dawn warnings on stderr", () => {
        const synth = run('npx', ['--offline', 'wgseg', 'synth', '--out', 'data', '--train', '0', '--val', '0', '--test', '1', '--size', '32,32'], project);
        if (synth.failure) return { ok: false, detail: `${synth.failure}:\n${tail(synth.stderr)}` };
        const r = run('npx', ['--offline', 'wgseg', 'predict', '--model', 'run', '--input', 'data/test/images', '--out', 'labels'], project);
        if (r.failure) return { ok: false, detail: `${r.failure}:\n${tail(r.stderr)}` };
        const labels = existsSync(join(project, 'labels')) ? readdirSync(join(project, 'labels')) : [];
        const warned = r.stderr.includes('artificially reduced');
        return { ok: labels.length > 0 && !warned, detail: `${labels.join(', ') || 'no labels written'}${warned ? `; stderr:\n${r.stderr}` : ''}` };
      });
    }

    check('deno: the same program imports wgseg (navigator.gpu), trains, predicts, disposes', () =>
      consumerRan(run(bin('deno'), ['run', '--allow-all', '--no-prompt', '--no-lock', 'consumer.mjs'], project)),
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const { failed } = printResults('package', `wgseg from its tarball, ${process.platform}`, results, null, Date.now() - started);
process.exit(failed > 0 ? 1 : 0);
