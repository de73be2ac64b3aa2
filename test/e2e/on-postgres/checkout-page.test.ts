/** The suite of test/e2e/checkout-page.test.ts, with its servers and commands on a PostgreSQL database of its own. */
process.env.MIM_TEST_STORE = 'postgres';
await import('../checkout-page.test.js');
