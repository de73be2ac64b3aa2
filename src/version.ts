/** The package version, in one place: the MCP server info and the User-Agent Mollie sees both use it. */
export const VERSION = '0.8.0';
