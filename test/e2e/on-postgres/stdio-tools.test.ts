/** The suite of test/e2e/stdio-tools.test.ts, with its servers and commands on a PostgreSQL database of its own. */
process.env.MIM_TEST_STORE = 'postgres';
await import('../stdio-tools.test.js');
