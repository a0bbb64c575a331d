// The checks of test/ops/gather.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/gather.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
