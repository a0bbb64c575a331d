// The checks of test/ops/elementwise.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/elementwise.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
