// A test-only way to make a worker process die on one row, as a row that crashes its worker would (a receipt
// that exhausts memory, a native crash): the poison-row tests (test/soak.test.ts) need a row that kills every
// worker that sends it. Active only when NODE_ENV=test AND RC_MIGRATE_TEST_POISON_TOKEN names the row's token;
// in any other run this returns nothing and no row is ever checked.
import type { ReceiptJobData } from '../types.js';

export const TEST_POISON_ENV = 'RC_MIGRATE_TEST_POISON_TOKEN';

/** The hook, called right before a row's request goes: SIGKILLs this process when the row is the poison one. */
export function testPoisonHook(env: NodeJS.ProcessEnv): ((data: ReceiptJobData) => void) | undefined {
  const poison = env[TEST_POISON_ENV];
  if (env.NODE_ENV !== 'test' || poison === undefined || poison === '') return undefined;
  return (data) => {
    if (data.body.fetch_token === poison) process.kill(process.pid, 'SIGKILL');
  };
}
