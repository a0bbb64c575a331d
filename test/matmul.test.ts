// The checks of test/ops/matmul.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/matmul.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
