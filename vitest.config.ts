import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Installs Debian's chromium for the checkout page's browser test when a fresh machine lacks it.
    // The secrets scan: every test records what servers give back; the teardown fails the run on any secret in it.
    // A throwaway PostgreSQL cluster for the shared-store tests (Debian's postgresql, installed when missing).
    globalSetup: ['test/setup/chromium.ts', 'test/setup/secrets-scan.ts', 'test/setup/postgres.ts'],
    // The wire tests wait out real Retry-After and backoff delays; keep them off the default 5 s edge.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
