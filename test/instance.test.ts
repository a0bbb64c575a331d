// The checks of test/ops/instance.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/instance.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
