// The checks of test/ops/optim.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/optim.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
