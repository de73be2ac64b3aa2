/** The suite of test/e2e/policy-reload.test.ts, with its servers and commands on a PostgreSQL database of its own. */
process.env.MIM_TEST_STORE = 'postgres';
await import('../policy-reload.test.js');
