// The checks of test/ops/lovasz.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/lovasz.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
