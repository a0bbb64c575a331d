#!/usr/bin/env node
// The `wgseg` command: runs the TypeScript sources through tsx (resolved from this package, so it works from any
// working directory and through `npx wgseg`).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
