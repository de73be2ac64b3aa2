/**
 * One throwaway PostgreSQL cluster for the whole run (test/support/postgres-cluster.ts), or the server named by
 * MOLLIE_MCP_TEST_DATABASE_URL (a superuser's URL). Each test file makes its own databases and roles on it
 * (test/support/postgres.ts).
 */
import type { TestProject } from 'vitest/node';
import { startCluster } from '../support/postgres-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAdminUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const given = process.env.MOLLIE_MCP_TEST_DATABASE_URL;
  if (given !== undefined && given !== '') {
    project.provide('postgresAdminUrl', given);
    return () => undefined;
  }
  const cluster = await startCluster();
  project.provide('postgresAdminUrl', cluster.adminUrl);
  return () => cluster.stop();
}
