// The checks of test/ops/conv.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/conv.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
