// `npm run test:app`: the browser app end to end. Typechecks the page as browser code, labels a generated blob image
// with the CLI (`wgseg predict` with test/fixtures/app-models/synthetic-embedseg, an EmbedSeg `small` trained here on
// `wgseg synth` blobs: no shipped model reaches the bar yet), starts `wgseg app --models` on that folder, opens the page in Debian's
// headless Chromium, drops the same image on it, and requires the page's instance count to equal the CLI's and its
// labels to match the CLI's (identical, or at least 99% of pixels once ids are paired); then a postprocessing change
// that must not re-run the network, the TIFF download, and the messages for a browser without WebGPU or without an
// adapter; and a two-slice TIFF stack of the same image, which the 2D model must segment slice by slice into twice the
// instances; and the static folder `wgseg app --out` writes, behind a plain file server. Ends with `app: N passed, M failed` (test/portable/report.ts), which scripts/test-all.sh adds up; keeps a
// screenshot in out/app-test/page.png.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { AppHook } from '../../app/main.ts';
import { readLabels } from '../../src/train/io-node.ts';
import { decodeTiff, encodeLabelTiff } from '../../src/train/tiff-node.ts';
import type { CheckResult } from '../portable/checks.ts';
import { CHROMIUM, FLAGS } from '../browser/chromium.ts';
import { printResults } from '../portable/report.ts';
import { blobsPng } from './image.ts';

const MODEL = 'synthetic-embedseg';
/** Pixels of the page's labels that must agree with the CLI's once ids are paired. */
const MIN_AGREEMENT = 0.99;
const STEP_TIMEOUT_MS = 300_000;

const started = Date.now();
const root = fileURLToPath(new URL('../..', import.meta.url));
/** The models the app lists: a committed fixture (scripts/make-app-fixture.sh). */
const MODELS = join(root, 'test', 'fixtures', 'app-models');
const out = join(root, 'out', 'app-test');
const results: CheckResult[] = [];
let adapter = 'unknown';
let failure: string | null = null;

/** Runs `fn` as the check `name`; it returns [ok, detail]. A throw fails the check and stops the run. */
async function check(name: string, fn: () => Promise<[boolean, string]>): Promise<boolean> {
  const t = Date.now();
  try {
    const [ok, detail] = await fn();
    results.push({ name, ok, detail, ms: Date.now() - t });
    return ok;
  } catch (e) {
    results.push({ name, ok: false, detail: e instanceof Error ? e.message : String(e), ms: Date.now() - t });
    return false;
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Distinct instance ids (> 0). */
const countIds = (labels: ArrayLike<number>) => new Set(Array.from(labels).filter((v) => v > 0)).size;

/**
 * How far two label images agree: each id of `a` is paired with the id of `b` it overlaps most (0 with 0), and
 * `agree` is the share of pixels where the pairing holds.
 */
function agreement(a: ArrayLike<number>, b: Int32Array): { identical: boolean; agree: number; differ: number } {
  const overlaps = new Map<number, Map<number, number>>();
  let identical = a.length === b.length;
  for (let i = 0; i < b.length; i++) {
    if (a[i] !== b[i]) identical = false;
    const row = overlaps.get(a[i]) ?? new Map<number, number>();
    row.set(b[i], (row.get(b[i]) ?? 0) + 1);
    overlaps.set(a[i], row);
  }
  const pair = new Map([...overlaps].map(([id, row]) => [id, id === 0 ? 0 : [...row].sort((x, y) => y[1] - x[1])[0][0]]));
  let differ = 0;
  for (let i = 0; i < b.length; i++) if (pair.get(a[i]) !== b[i]) differ++;
  return { identical, agree: 1 - differ / b.length, differ };
}

/** Waits until the page's hook satisfies `predicate` (a function body over `h`, the hook). */
async function until(page: Page, predicate: string, timeout = STEP_TIMEOUT_MS): Promise<AppHook> {
  await page.waitForFunction(`(() => { const h = window.__wgseg; return !!h && (${predicate}); })()`, null, { timeout, polling: 100 });
  return page.evaluate(() => ({ ...window.__wgseg, labels: undefined }) as unknown as AppHook);
}

/** Starts `wgseg app --port 0` and resolves to the address it prints. */
function startServer(): Promise<{ server: ChildProcess; url: string }> {
  const server = spawn(process.execPath, [join(root, 'bin', 'wgseg.js'), 'app', '--port', '0', '--models', MODELS], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      const url = /open (http:\/\/\S+)/.exec(text)?.[1];
      if (url) resolve({ server, url });
    };
    server.stdout!.on('data', onData);
    server.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
    server.on('exit', (code) => reject(new Error(`wgseg app exited (${code}) before serving: ${text.trim()}`)));
  });
}

/** A plain static file server for `dir` (what any web server does), on a free port of 127.0.0.1. */
async function staticServer(dir: string): Promise<{ url: string; close: () => void }> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json' };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = join(dir, path === '/' ? 'index.html' : path);
    readFile(file)
      .then((body) => res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body))
      .catch(() => res.writeHead(404).end());
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => server.close() };
}

/** A fresh page that prints the app's console errors, with `init` run before the app's script. */
async function openPage(browser: Browser, url: string, init?: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  page.on('console', (m) => m.type() === 'error' && console.log(`  [page console.error] ${m.text()}`));
  page.on('pageerror', (e) => (failure ??= `uncaught error in the page: ${e.message}`));
  if (init) await page.addInitScript(init);
  await page.goto(url);
  return page;
}

async function run(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash scripts/setup.sh --browser\``);
  if (!existsSync(join(MODELS, MODEL, 'config.json'))) throw new Error(`${join(MODELS, MODEL)}/config.json is missing: the test needs that model`);
  await rm(out, { recursive: true, force: true });
  await mkdir(join(out, 'input'), { recursive: true });

  await check('the page typechecks as browser code (tsc -p app)', async () => {
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', join(root, 'app')], { encoding: 'utf8' });
    return [tsc.status === 0, tsc.status === 0 ? 'no errors' : (tsc.stdout + tsc.stderr).trim()];
  });

  const { png, pixels, blobs } = blobsPng(128, 7);
  await writeFile(join(out, 'input', 'blobs.png'), png);
  let cli: Int32Array | null = null;
  await check(`wgseg predict labels the image (${blobs} blobs, 128×128)`, async () => {
    const t = Date.now();
    const predict = spawnSync(process.execPath, [join(root, 'bin', 'wgseg.js'), 'predict', '--model', join(MODELS, MODEL), '--input', join(out, 'input'), '--out', join(out, 'cli')], { encoding: 'utf8' });
    if (predict.status !== 0) return [false, `exit ${predict.status}: ${predict.stderr.trim()}`];
    cli = (await readLabels(join(out, 'cli', 'blobs.tif'))).data;
    const count = countIds(cli);
    return [count > 0, `${count} instances in ${seconds(Date.now() - t)}${count > 0 ? '' : ': nothing to compare the page with'}`];
  });
  if (!cli) throw new Error('no CLI labels to compare the page with');
  const cliLabels: Int32Array = cli;
  const cliCount = countIds(cliLabels);

  const { server, url } = await startServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  try {
    await check('wgseg app serves models.json listing the model', async () => {
      const manifest = (await (await fetch(`${url}models.json`)).json()) as { models: { name: string }[] };
      const names = manifest.models.map((m) => m.name);
      return [names.includes(MODEL), `models: ${names.join(', ') || 'none'}`];
    });

    const t0 = Date.now();
    const page = await openPage(browser, `${url}?model=${MODEL}`);
    const ready = await until(page, `h.status !== 'starting' && h.status !== 'busy'`);
    adapter = `Chromium ${browser.version()} on ${ready.adapter ?? 'no adapter'}`;
    const loadMs = Date.now() - t0;
    if (!(await check('the page loads the model', async () => [ready.status === 'ready' && ready.model === MODEL,
      ready.status === 'ready' ? `${MODEL} ready ${seconds(loadMs)} after navigation (model fetch + build ${seconds(ready.timings.modelLoad ?? 0)})` : `${ready.status}: ${ready.message}`]))) {
      return;
    }

    const t1 = Date.now();
    await page.setInputFiles('#file', { name: 'blobs.png', mimeType: 'image/png', buffer: Buffer.from(png) });
    const done = await until(page, `h.status !== 'busy' && (h.postprocessRuns >= 1 || h.status === 'error')`);
    const predictMs = Date.now() - t1;
    const pageLabels = (await page.evaluate(() => window.__wgseg.labels())) ?? [];
    const shown = (await page.textContent('#count')) ?? '';
    await page.screenshot({ path: join(out, 'page.png') });
    await check('the page counts as many instances as the CLI', async () => [
      done.status === 'done' && done.count === cliCount && shown.startsWith(`${cliCount} instance`),
      done.status === 'done'
        ? `page ${done.count} ("${shown}"), CLI ${cliCount}; drop to result ${seconds(predictMs)} (network ${seconds(done.timings.predict ?? 0)}, postprocessing ${seconds(done.timings.postprocess ?? 0)})`
        : `${done.status}: ${done.message}`,
    ]);
    await check(`the page's labels match the CLI's (>= ${MIN_AGREEMENT * 100}% of pixels)`, async () => {
      if (pageLabels.length !== cliLabels.length) return [false, `page has ${pageLabels.length} labels, CLI ${cliLabels.length}`];
      const { identical, agree, differ } = agreement(pageLabels, cliLabels);
      return [agree >= MIN_AGREEMENT, identical ? 'identical' : `${differ} of ${cliLabels.length} pixels differ once ids are paired (${(100 * agree).toFixed(2)}% agree)`];
    });

    await check('changing seedThreshold re-runs only the postprocessing', async () => {
      const before = done.postprocessRuns;
      await page.$eval('#param-seedThreshold', (input: HTMLInputElement) => {
        input.value = '0.5';
        input.dispatchEvent(new Event('input'));
      });
      const changed = await until(page, `h.status !== 'busy' && h.postprocessRuns > ${before}`);
      await page.click('#reset');
      const back = await until(page, `h.status !== 'busy' && h.postprocessRuns > ${changed.postprocessRuns}`);
      const again = (await page.evaluate(() => window.__wgseg.labels())) ?? [];
      const same = again.length === pageLabels.length && again.every((v, i) => v === pageLabels[i]);
      return [back.networkPasses === 1 && same && changed.values.seedThreshold === 0.5,
        `seedThreshold 0.5: ${changed.count} instances in ${seconds(changed.timings.postprocess ?? 0)}; back at ${back.values.seedThreshold}: ${back.count}, labels ${same ? 'as before' : 'CHANGED'}; network passes ${back.networkPasses}`];
    });

    await check('the download is the label TIFF (uint16, the page\'s labels)', async () => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const file = join(out, 'labels.tif');
      await download.saveAs(file);
      const raw = await decodeTiff(new Uint8Array(await readFile(file)), file);
      const labels = (await readLabels(file)).data;
      const same = labels.length === pageLabels.length && labels.every((v, i) => v === pageLabels[i]);
      return [raw.data instanceof Uint16Array && raw.shape.join() === '1,128,128' && same,
        `${download.suggestedFilename()}: [${raw.shape.join(', ')}] ${raw.data.constructor.name}, ${same ? 'the page\'s labels' : 'NOT the page\'s labels'}`];
    });

    await check('a 3D stack is segmented slice by slice (the image twice: twice the instances)', async () => {
      // A uint16 ImageJ stack; the label writer writes exactly that.
      const stack = encodeLabelTiff({ data: Int32Array.from([...pixels, ...pixels]), shape: [2, 128, 128], spacing: [1, 1, 1] });
      const before = (await until(page, 'true')).networkPasses;
      const t = Date.now();
      await page.setInputFiles('#file', { name: 'stack.tif', mimeType: 'image/tiff', buffer: Buffer.from(stack) });
      const state = await until(page, `h.status !== 'busy' && h.networkPasses > ${before}`);
      const labels = (await page.evaluate(() => window.__wgseg.labels())) ?? [];
      const plane = 128 * 128;
      const [first, second] = [labels.slice(0, plane), labels.slice(plane)];
      const offset = Math.max(...first);
      const shifted = second.every((v, i) => v === (first[i] > 0 ? first[i] + offset : first[i]));
      const slider = await page.isVisible('#slice');
      return [state.count === 2 * cliCount && state.shape?.join() === '2,128,128' && shifted && slider,
        `${state.count} instances in [${state.shape?.join(', ')}] (${seconds(Date.now() - t)}); slice 2 ${shifted ? 'repeats' : 'does NOT repeat'} slice 1 with new ids; slice slider ${slider ? 'shown' : 'MISSING'}`];
    });
    await page.close();

    await check('wgseg app --out writes a folder that works behind a plain web server', async () => {
      const site = join(out, 'site');
      const written = spawnSync(process.execPath, [join(root, 'bin', 'wgseg.js'), 'app', '--out', site, '--models', MODELS], { encoding: 'utf8' });
      if (written.status !== 0) return [false, `wgseg app --out exited ${written.status}: ${written.stderr.trim()}`];
      const plain = await staticServer(site);
      try {
        const p = await openPage(browser, plain.url);
        const state = await until(p, `h.status !== 'starting' && h.status !== 'busy'`);
        await p.close();
        return [state.status === 'ready' && state.model === MODEL, `${state.status}: ${state.model ?? state.message}`];
      } finally {
        plain.close();
      }
    });

    for (const [name, init, expected] of [
      ['a browser without WebGPU is told so', `Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true })`, 'navigator.gpu is undefined'],
      ['a browser whose WebGPU has no adapter is told so', `GPU.prototype.requestAdapter = async () => null`, 'requestAdapter() returned null'],
    ]) {
      await check(name, async () => {
        const p = await openPage(browser, url, init);
        const state = await until(p, `h.status !== 'starting' && h.status !== 'busy'`, 60_000);
        const text = (await p.textContent('#problem')) ?? '';
        const visible = await p.isVisible('#problem');
        await p.close();
        return [state.status === 'unsupported' && visible && text.includes(expected), `${state.status}: "${text}"`];
      });
    }
  } finally {
    await browser.close();
    server.kill('SIGTERM');
  }
}

try {
  await run();
} catch (e) {
  failure ??= e instanceof Error ? e.message : String(e);
}
const { failed } = printResults('app', adapter, results, failure, Date.now() - started);
process.exit(failed > 0 ? 1 : 0);
