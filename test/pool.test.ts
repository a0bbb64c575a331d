// The checks of test/ops/pool.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/pool.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
