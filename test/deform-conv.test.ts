// The checks of test/ops/deform-conv.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/deform-conv.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
