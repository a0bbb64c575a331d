// Prints the WebGPU adapter Dawn finds in Node (vendor, architecture, description), or exits 1 when there is none.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const adapter = await create([]).requestAdapter({ powerPreference: 'high-performance' });
if (!adapter) {
  console.log('no WebGPU adapter');
  process.exit(1);
}
const { vendor, architecture, description } = adapter.info;
console.log(`adapter: ${[vendor, architecture, description].filter(Boolean).join(' / ')}`);
process.exit(0);
