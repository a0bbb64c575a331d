// The browser side of `npm run test:browser`: the portable checks, then every op family's checks, on Chromium's
// navigator.gpu, through the unchanged runtime-agnostic entry. Reports on the console in the lines
// test/portable/report.ts parses; when there is no WebGPU it says what it saw instead (navigator.gpu, the adapter
// request) so the runner can tell why.
import { createEngine } from '../../src/index.ts';
import { runPortableChecks } from '../portable/checks.ts';
import { runOpFamilies } from '../portable/families.ts';

async function main(): Promise<void> {
  if (!navigator.gpu) {
    throw new Error(`navigator.gpu is undefined (isSecureContext=${isSecureContext}, userAgent ${navigator.userAgent})`);
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('navigator.gpu.requestAdapter() returned null: Chromium offers no usable adapter (see chrome://gpu, "Dawn Info")');
  const engine = await createEngine();
  const info = adapter.info;
  const name = `${engine.adapterName}${info.isFallbackAdapter ? ' (fallback adapter)' : ''}`;
  console.log(`wgseg-adapter ${JSON.stringify({ runtime: navigator.userAgent.match(/Chrom\S+/)?.[0] ?? 'browser', adapter: name })}`);
  for (const result of await runPortableChecks(engine)) console.log(`wgseg-result ${JSON.stringify(result)}`);
  await engine.sync();
  engine.destroy();
  await runOpFamilies(() => createEngine());
  console.log('wgseg-done');
}

main().catch((e: unknown) => console.log(`wgseg-fatal ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));
