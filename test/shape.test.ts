// The checks of test/ops/shape.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/shape.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
