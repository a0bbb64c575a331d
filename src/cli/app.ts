// `wgseg app`: the in-browser app (app/) on 127.0.0.1. In a checkout the page is bundled from app/main.ts with
// esbuild on every start (never stale); elsewhere a prebuilt app/dist is served. models.json, the model list the page
// reads, is made from the models folder's subfolders on every request, so a folder added there shows on reload.
// `--out DIR` writes the same page, models.json and a copy of the models as a static folder for any web server.
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunConfig } from '../train/run.ts';
import { DataError } from '../train/io-node.ts';
import type { ModelEntry, ModelManifest } from './app-models.ts';
import { nonNegativeInt, parse } from './args.ts';
import type { Context } from './main.ts';

export const appHelp = `wgseg app [--port N] [--host ADDRESS] [--models DIR] [--out DIR]

Serves the wgseg app: a page that segments a TIFF or PNG you drop on it with a trained model, on your browser's
WebGPU (Chrome or Edge 113+). Images never leave the machine: the page reads them and runs the model itself. It
shows each instance in its own colour and their count, 3D stacks slice by slice, lets you change the model's
postprocessing parameters (re-running only the postprocessing), and downloads the label image as a TIFF for Fiji.

  --port N         port to listen on (default 8765; 0 picks a free one)
  --host ADDRESS   address to listen on (default 127.0.0.1). Browsers give WebGPU only to secure contexts:
                   https, or http on localhost / 127.0.0.1; another machine reaching this over plain http has none
  --models DIR     the folder of model folders, each a run folder with config.json and best.safetensors (or
                   last.safetensors) (default: pretrained/ of this package)
  --out DIR        write the page as a static folder instead of serving it: DIR/index.html, DIR/app.js,
                   DIR/models.json and DIR/pretrained/NAME/{config.json, weights} for each model; copy DIR to any
                   web server (over https)

Prints the address to open; Ctrl-C stops the server.`;

const flags = { port: { type: 'string' }, host: { type: 'string' }, models: { type: 'string' }, out: { type: 'string' } } as const;

/** This package's root: src/cli/app.ts and dist/cli/app.js both sit two folders down. */
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Where the models folder appears beside the page (static folders and the server alike). */
const modelsUrl = 'pretrained/';

/** models.json for the model folders in `dir`; a folder whose config.json is unreadable is reported on `warn` and left out. */
export async function modelManifest(dir: string, warn: (line: string) => void = () => {}): Promise<ModelManifest> {
  const models: ModelEntry[] = [];
  const names = existsSync(dir) ? (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort() : [];
  for (const name of names) {
    const config = join(dir, name, 'config.json');
    if (!existsSync(config)) continue;
    const weights = ['best.safetensors', 'last.safetensors'].find((w) => existsSync(join(dir, name, w)));
    if (!weights) {
      warn(`wgseg app: ${join(dir, name)} has config.json but no best.safetensors or last.safetensors; left out`);
      continue;
    }
    try {
      const run = JSON.parse(await readFile(config, 'utf8')) as RunConfig;
      if (run.format !== 'wgseg-run/1') throw new Error(`format ${run.format}, not wgseg-run/1`);
      const c = run.model.config;
      const tuning = run.model.tuning;
      models.push({
        name, url: `${modelsUrl}${encodeURIComponent(name)}/`, weights, kind: run.model.kind, preset: run.model.preset,
        ndim: Number(c.ndim ?? 2), inChannels: Number(c.inChannels ?? 1),
        ...(tuning ? { tuned: { metric: tuning.metric, score: tuning.score } } : {}),
      });
    } catch (e) {
      warn(`wgseg app: ${config}: ${(e as Error).message}; left out`);
    }
  }
  return { format: 'wgseg-models/1', folder: modelsUrl, models };
}

/**
 * Writes the page into `out` (index.html, app.js): bundled from app/main.ts with esbuild in a checkout, else copied
 * from the package's prebuilt app/dist.
 */
export async function buildPage(out: string): Promise<void> {
  const app = join(packageRoot, 'app');
  await mkdir(out, { recursive: true });
  if (existsSync(join(app, 'main.ts'))) {
    let esbuild: typeof import('esbuild');
    try {
      esbuild = await import('esbuild');
    } catch {
      throw new DataError(`bundling ${join(app, 'main.ts')} needs esbuild, a dev dependency: run npm install in ${packageRoot}`);
    }
    await esbuild.build({
      entryPoints: [join(app, 'main.ts')], outfile: join(out, 'app.js'), bundle: true, format: 'esm', platform: 'browser',
      target: 'es2022', minify: true, logLevel: 'silent',
    });
    await copyFile(join(app, 'index.html'), join(out, 'index.html'));
  } else if (existsSync(join(app, 'dist', 'index.html'))) {
    if (resolve(out) !== resolve(app, 'dist')) for (const file of ['index.html', 'app.js']) await copyFile(join(app, 'dist', file), join(out, file));
  } else {
    throw new DataError(`the app's page is not in this package: neither ${join(app, 'main.ts')} nor ${join(app, 'dist', 'index.html')}`);
  }
}

/** A static folder: the page, models.json and each listed model's config.json and weights under pretrained/. */
async function writeSite(out: string, models: string, ctx: Context): Promise<number> {
  await buildPage(out);
  const manifest = await modelManifest(models, (line) => ctx.stderr.write(`${line}\n`));
  for (const { name, weights } of manifest.models) {
    await mkdir(join(out, modelsUrl, name), { recursive: true });
    for (const file of ['config.json', weights]) await cp(join(models, name, file), join(out, modelsUrl, name, file));
  }
  await writeFile(join(out, 'models.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  ctx.stdout.write(`${JSON.stringify({ out: resolve(out), models: manifest.models.map((m) => m.name) })}\n`);
  return 0;
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.json': 'application/json',
  '.safetensors': 'application/octet-stream',
};

/** The file under `root` that URL path `path` names, or null for one outside it. */
function within(root: string, path: string): string | null {
  const file = resolve(root, `.${path}`);
  return file === resolve(root) || file.startsWith(resolve(root) + sep) ? file : null;
}

/** Serves the page in `page`, models.json (made afresh) and the models folder under pretrained/. */
function server(page: string, models: string, warn: (line: string) => void): Server {
  return createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405).end();
      if (path === '/models.json') {
        const body = JSON.stringify(await modelManifest(models, warn));
        return void res.writeHead(200, { 'content-type': contentTypes['.json'], 'cache-control': 'no-cache' }).end(body);
      }
      const file = path.startsWith(`/${modelsUrl}`) ? within(models, path.slice(modelsUrl.length)) : within(page, path === '/' ? '/index.html' : path);
      const info = file ? await stat(file).catch(() => null) : null;
      if (!file || !info?.isFile()) return void res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}\n`);
      res.writeHead(200, {
        'content-type': contentTypes[extname(file)] ?? 'application/octet-stream', 'content-length': info.size, 'cache-control': 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : await readFile(file));
    })().catch((e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`));
  });
}

export async function app(argv: string[], ctx: Context): Promise<number> {
  const { values } = parse('app', argv, flags);
  const port = nonNegativeInt('port', values.port) ?? 8765;
  const host = values.host ?? '127.0.0.1';
  const models = resolve(values.models ?? join(packageRoot, 'pretrained'));
  if (values.models && !(await stat(models).catch(() => null))?.isDirectory()) throw new DataError(`--models: ${models} is not a folder`);
  if (values.out) return writeSite(values.out, models, ctx);

  const page = join(packageRoot, 'app', 'dist');
  await buildPage(page);
  const warn = (line: string) => ctx.stderr.write(`${line}\n`);
  const manifest = await modelManifest(models, warn);
  await writeFile(join(page, 'models.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const http = server(page, models, warn);
  await new Promise<void>((done, fail) => {
    http.once('error', (e: NodeJS.ErrnoException) => fail(new DataError(`--port ${port} --host ${host}: cannot listen (${e.code ?? e.message})`)));
    http.listen(port, host, done);
  });
  const address = http.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/`;
  const found = manifest.models.length ? `${manifest.models.length} model(s) in ${models}` : `no models yet in ${models}`;
  ctx.stdout.write(`wgseg app: open ${url} (${found}; Ctrl-C stops)\n`);
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
    warn(`wgseg app: browsers on other machines reaching ${url} over plain http get no WebGPU (not a secure context); put it behind https for them`);
  }
  await new Promise<void>((stop) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop());
  });
  const closed = new Promise<void>((done) => http.close(() => done()));
  http.closeAllConnections();
  await closed;
  return 0;
}
