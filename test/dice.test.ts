// The checks of test/ops/dice.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/dice.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
