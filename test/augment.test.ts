// The checks of test/ops/augment.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/augment.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
