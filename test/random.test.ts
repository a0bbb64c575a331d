// The checks of test/ops/random.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/random.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
