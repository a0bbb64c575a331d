// The checks of test/ops/patch-targets.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/patch-targets.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
