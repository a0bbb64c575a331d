// Runs the portable checks, then every op family's checks, in Deno on its own navigator.gpu (wgpu), through the
// unchanged runtime-agnostic entry. Prints `wgseg-adapter <json>`, the `wgseg-start`/`wgseg-result <json>` lines and
// `wgseg-done`; test/deno/run.ts parses them.
import { createEngine } from '../../src/index.ts';
import { runPortableChecks } from '../portable/checks.ts';
import { runOpFamilies } from '../portable/families.ts';

const engine = await createEngine();
console.log(`wgseg-adapter ${JSON.stringify({ runtime: navigator.userAgent, adapter: engine.adapterName })}`);
for (const result of await runPortableChecks(engine)) console.log(`wgseg-result ${JSON.stringify(result)}`);
await engine.sync();
engine.destroy();
await runOpFamilies(() => createEngine());
console.log('wgseg-done');
