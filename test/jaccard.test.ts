// The checks of test/ops/jaccard.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/jaccard.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
