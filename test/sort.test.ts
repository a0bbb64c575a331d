// The checks of test/ops/sort.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/sort.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
