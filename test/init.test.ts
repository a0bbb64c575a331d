// The checks of test/ops/init.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/init.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
