// The checks of test/ops/softmax.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/softmax.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
