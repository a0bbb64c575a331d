// `npm run test:browser`: bundles test/browser/page.ts with esbuild, serves it on 127.0.0.1 (WebGPU needs a secure
// context: about:blank and data: URLs have no navigator.gpu), opens it in Debian's headless Chromium and turns the
// page's `wgseg-*` console lines into `browser: N passed, M failed`.
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { parseResults, printResults } from '../portable/report.ts';
import { CHROMIUM, FLAGS } from './chromium.ts';

const TIMEOUT_MS = 600_000;


const started = Date.now();
const root = fileURLToPath(new URL('../..', import.meta.url));
let output = '';
let failure: string | null = null;

if (!existsSync(CHROMIUM)) {
  failure = `${CHROMIUM} is missing: run \`bash scripts/setup.sh --browser\``;
} else {
  const bundle = await build({
    entryPoints: [`${root}test/browser/page.ts`],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const script = bundle.outputFiles[0].text;
  const server = createServer((req, res) => {
    if (req.url === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    } else if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>wgseg</title><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  // Playwright gives every launch a fresh temporary profile (--user-data-dir) and removes it on close.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  try {
    const page = await browser.newPage();
    const finished = new Promise<void>((resolve) => {
      page.on('console', (message) => {
        const text = message.text();
        if (text.startsWith('wgseg-')) output += `${text}\n`;
        else console.log(`  [console.${message.type()}] ${text}`);
        if (text.startsWith('wgseg-done')) resolve();
        if (text.startsWith('wgseg-fatal')) {
          failure = `the page failed: ${text.slice('wgseg-fatal '.length)}`;
          resolve();
        }
      });
      page.on('pageerror', (error) => {
        failure = `uncaught error in the page: ${error.stack ?? error.message}`;
        resolve();
      });
      page.on('crash', () => {
        failure = 'the page crashed';
        resolve();
      });
    });
    await page.goto(url);
    const timedOut = await Promise.race([finished.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), TIMEOUT_MS).unref())]);
    if (timedOut) failure = `no result within ${TIMEOUT_MS / 1000} s`;
  } catch (e) {
    failure = `could not drive Chromium: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    await browser.close();
    server.close();
  }
}

const { adapter, results, done, running } = parseResults(output);
if (!failure && !done) failure = 'the page stopped before reporting every check';
if (failure && running) failure += ` (during ${running})`;
const { failed } = printResults('browser', adapter, results, failure, Date.now() - started);
process.exit(failed > 0 ? 1 : 0);
