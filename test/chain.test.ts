// The checks of test/ops/chain.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/chain.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
