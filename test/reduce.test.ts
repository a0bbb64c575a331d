// The checks of test/ops/reduce.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/reduce.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
