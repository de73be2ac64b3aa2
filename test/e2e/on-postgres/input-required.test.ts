/** The suite of test/e2e/input-required.test.ts (2026-07-28 confirmation, replicas included), on PostgreSQL. */
process.env.MIM_TEST_STORE = 'postgres';
await import('../input-required.test.js');
