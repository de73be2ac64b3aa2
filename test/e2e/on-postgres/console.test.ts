/** The suite of test/e2e/console.test.ts, with its servers and commands on a PostgreSQL database of its own. */
process.env.MIM_TEST_STORE = 'postgres';
await import('../console.test.js');
