/**
 * `client-config`: the entry a person pastes into their MCP client, with this machine's absolute paths, in the shape
 * that client reads (Claude Desktop, Cursor and Claude Code: `mcpServers`; VS Code: `servers` with a `type`), and the
 * file it goes in on this OS. Secrets are never printed: where a client can fill one in itself (an input, an
 * environment variable) the entry refers to it, elsewhere a placeholder says what to paste. mcp.json.example is made
 * by the same code (scripts/write-mcp-example.mjs), so the two cannot drift.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UsageError, type CommandOutput } from './output.js';

export const CLIENTS = ['claude-desktop', 'cursor', 'vscode', 'claude-code'] as const;
export type ClientName = (typeof CLIENTS)[number];

export interface EntryPaths {
  node: string;
  cli: string;
  policies: string;
  db: string;
}

export interface EntryRequest {
  client: ClientName;
  agent: string;
  simulator: boolean;
  /** The HTTP form: the server's /mcp URL; null for stdio. */
  url: string | null;
  /** Whether the agent's policy has a token_sha256, so the server needs its token. */
  needsToken: boolean;
  paths: EntryPaths;
  /** Where npx is, for Claude Desktop's HTTP bridge. */
  npx?: string;
}

type Json = Record<string, unknown>;

/**
 * The name a secret goes by in the person's environment or the client's secret store: the account's API key is one
 * for every entry, each agent's token its own (two entries must not share MOLLIE_MCP_TOKEN).
 */
export function secretName(variable: string, agent: string): string {
  return variable === 'MOLLIE_MCP_TOKEN' ? `MOLLIE_MCP_TOKEN_${agent.toUpperCase().replace(/[^A-Z0-9]/g, '_')}` : variable;
}

function inputId(name: string): string {
  return name.toLowerCase().replace(/_/g, '-');
}

/** How each client refers to a secret it fills in itself, or null where only a pasted value works. */
function secretRef(client: ClientName, name: string): string | null {
  if (client === 'vscode') return `\${input:${inputId(name)}}`;
  if (client === 'cursor') return `\${env:${name}}`;
  if (client === 'claude-code') return `\${${name}}`;
  return null;
}

const PLACEHOLDERS: Record<string, string> = {
  MOLLIE_MCP_TOKEN: 'mim_... (the token printed by `token create --agent AGENT`)',
  MOLLIE_API_KEY: 'test_... (your Mollie test API key)',
};

function secret(request: EntryRequest, variable: string): string {
  return secretRef(request.client, secretName(variable, request.agent)) ?? PLACEHOLDERS[variable]!.replace('AGENT', request.agent);
}

export function entryName(request: Pick<EntryRequest, 'agent' | 'simulator'>): string {
  return `mollie-${request.agent}${request.simulator ? '-simulator' : ''}`;
}

/** The secrets the entry asks the client for (VS Code's `inputs`), or names in the environment (Cursor, Claude Code). */
function secretsOf(request: EntryRequest): string[] {
  if (request.url !== null) return ['MOLLIE_MCP_TOKEN'];
  return [...(request.needsToken ? ['MOLLIE_MCP_TOKEN'] : []), ...(request.simulator ? [] : ['MOLLIE_API_KEY'])];
}

function stdioServer(request: EntryRequest): Json {
  const { paths } = request;
  const env: Record<string, string> = {
    MOLLIE_MCP_AGENT: request.agent,
    MOLLIE_MCP_POLICIES: paths.policies,
    MOLLIE_MCP_DB: paths.db,
  };
  if (request.needsToken) env.MOLLIE_MCP_TOKEN = secret(request, 'MOLLIE_MCP_TOKEN');
  if (!request.simulator) {
    env.MOLLIE_API_KEY = secret(request, 'MOLLIE_API_KEY');
    env.MOLLIE_MCP_REDIRECT_URL = 'https://pay.example.com/thanks';
  }
  // Reports say Claude Desktop may declare elicitation without showing the question: approvals go out of band there.
  if (request.client === 'claude-desktop') env.MOLLIE_MCP_CONFIRM_IN_CLIENT = '0';
  return {
    ...(request.client === 'vscode' || request.client === 'claude-code' ? { type: 'stdio' } : {}),
    command: paths.node,
    args: [paths.cli, 'serve', ...(request.simulator ? ['--simulator'] : [])],
    env,
  };
}

function httpServer(request: EntryRequest): Json {
  const url = request.url!;
  const token = secret(request, 'MOLLIE_MCP_TOKEN');
  if (request.client === 'claude-desktop') {
    // Claude Desktop starts only local commands from its config file; the mcp-remote bridge speaks HTTP for it.
    return {
      command: request.npx ?? 'npx',
      args: ['-y', 'mcp-remote', url, '--header', 'Authorization:${MOLLIE_MCP_AUTHORIZATION}'],
      env: { MOLLIE_MCP_AUTHORIZATION: `Bearer ${token}` },
    };
  }
  return {
    ...(request.client === 'cursor' ? {} : { type: 'http' }),
    url,
    headers: { Authorization: `Bearer ${token}` },
  };
}

/**
 * The JSON to paste: the top-level key of that client's file with one server per request in it (one client's), and
 * for VS Code the inputs they ask for.
 */
export function clientEntry(...requests: EntryRequest[]): Json {
  const client = requests[0]!.client;
  const servers = Object.fromEntries(requests.map((request) => [entryName(request), request.url === null ? stdioServer(request) : httpServer(request)]));
  const inputs = new Map<string, Json>();
  for (const request of requests) {
    for (const variable of secretsOf(request)) {
      const id = inputId(secretName(variable, request.agent));
      inputs.set(id, {
        type: 'promptString',
        id,
        description: variable === 'MOLLIE_API_KEY' ? 'Mollie test API key (test_...)' : `Token of agent ${request.agent} (from token create)`,
        password: true,
      });
    }
  }
  if (client === 'vscode') return { ...(inputs.size > 0 ? { inputs: [...inputs.values()] } : {}), servers };
  return { mcpServers: servers };
}

export const EXAMPLE_PATHS: EntryPaths = {
  node: '/absolute/path/to/node',
  cli: '/absolute/path/to/mollie-invoice-mcp/dist/src/cli.js',
  policies: '/absolute/path/to/mollie-invoice-mcp/policies',
  db: '/absolute/path/to/mollie-invoice-mcp-state/mollie-invoice-mcp.db',
};

/**
 * mcp.json.example: every client's stdio entry for real Mollie and for the simulator, and its HTTP entry, as
 * client-config prints them with placeholder paths. `npm run mcp-example` writes it; a test fails when it drifts.
 */
export function exampleFile(): string {
  const example: Json = {};
  for (const client of CLIENTS) {
    const base = { client, agent: 'billing-bot', needsToken: false, paths: EXAMPLE_PATHS, npx: 'npx' };
    example[`${client}: stdio, real Mollie (test mode)`] = clientEntry({ ...base, simulator: false, url: null, needsToken: true });
    example[`${client}: stdio, simulator`] = clientEntry({
      ...base,
      simulator: true,
      url: null,
      paths: { ...EXAMPLE_PATHS, db: EXAMPLE_PATHS.db.replace('mollie-invoice-mcp.db', 'mollie-invoice-mcp-simulator.db') },
    });
    example[`${client}: HTTP`] = clientEntry({ ...base, simulator: false, url: 'http://127.0.0.1:3333/mcp', needsToken: true });
  }
  return `${JSON.stringify(example, null, 2)}
`;
}

/** Where the entry goes, for a person on `platform`. */
export function whereItGoes(client: ClientName, platform: NodeJS.Platform, env: Readonly<Record<string, string | undefined>>): string[] {
  const home = env.HOME ?? homedir();
  switch (client) {
    case 'claude-desktop': {
      const file =
        platform === 'darwin'
          ? join(home, 'Library', 'Application Support', 'Claude', 'claude_desktop_config.json')
          : platform === 'win32'
            ? join(env.APPDATA ?? join(home, 'AppData', 'Roaming'), 'Claude', 'claude_desktop_config.json')
            : join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'Claude', 'claude_desktop_config.json');
      return [
        `Put it in ${file} (Claude Desktop: Settings > Developer > Edit Config): merge "mcpServers" with any servers already there.`,
        'Then quit Claude Desktop completely and start it again.',
      ];
    }
    case 'cursor':
      return [
        `Put it in ${join(home, '.cursor', 'mcp.json')} (every project) or .cursor/mcp.json in one project: merge "mcpServers" with any servers already there.`,
        'Cursor shows the server under Settings > MCP; switch it on there.',
      ];
    case 'vscode':
      return [
        'Put it in .vscode/mcp.json in your workspace (or run "MCP: Open User Configuration" for every workspace): merge "servers" and "inputs" with what is there.',
        'VS Code asks for any ${input:...} value once, when the server first starts, and keeps it in its secret storage.',
      ];
    case 'claude-code':
      return [
        'Put it in .mcp.json at the root of your project (merge "mcpServers" with any servers already there), or add it from a terminal:',
        '  claude mcp add-json <name> \'<the object inside mcpServers>\'',
      ];
  }
}

/** Notes that matter for this entry: which variables the client must have, what to replace. */
function notes(request: EntryRequest): string[] {
  const lines: string[] = [];
  const secrets = secretsOf(request);
  if (secrets.length > 0) {
    const names = secrets.map((variable) => secretName(variable, request.agent));
    if (request.client === 'claude-desktop') lines.push(`Replace the placeholder${names.length > 1 ? 's' : ''} for ${secrets.join(' and ')} in ${entryName(request)} with the real value${names.length > 1 ? 's' : ''}; the file then holds a secret, so keep it private.`);
    if (request.client === 'cursor' || request.client === 'claude-code') lines.push(`Set ${names.join(' and ')} in the environment the client starts from; ${entryName(request)} refers to ${names.length > 1 ? 'them' : 'it'} and holds no secret.`);
  }
  if (secrets.includes('MOLLIE_MCP_TOKEN')) lines.push(`The token is the one \`token create --agent ${request.agent}\` printed, whose token_sha256 is in ${request.agent}'s policy.`);
  if (request.url !== null && request.client === 'claude-desktop') lines.push('Claude Desktop reaches an HTTP server through the mcp-remote bridge, which npx downloads from the npm registry at first use.');
  if (!request.simulator && request.url === null) {
    lines.push('Replace MOLLIE_MCP_REDIRECT_URL (https://pay.example.com/thanks) with the page your customers return to after paying.');
    lines.push('With an organization access token instead of a profile API key, set MOLLIE_ACCESS_TOKEN and MOLLIE_PROFILE_ID in place of MOLLIE_API_KEY (docs/configuration.md).');
  }
  if (request.simulator) lines.push('With --simulator no payment reaches Mollie; the checkout_url of a payment opens the simulator\'s checkout page, where you pay, fail, cancel or let it expire.');
  return lines;
}

export interface ClientConfigOptions {
  client: string | undefined;
  /** One agent, or several separated by commas: one entry each, to paste together. */
  agent: string;
  simulator: boolean;
  url: string | undefined;
  paths: EntryPaths;
  /** Agents with a policy, and whether each needs a token. */
  agents: ReadonlyMap<string, { needsToken: boolean }>;
  policiesDir: string;
  /** Why the database named cannot serve this entry (the other kind of Mollie's), if it cannot. */
  databaseProblem: string | null;
}

export function clientConfig(options: ClientConfigOptions, env: Readonly<Record<string, string | undefined>>, io: CommandOutput): number {
  const client = CLIENTS.find((name) => name === options.client);
  if (client === undefined) throw new UsageError(`client-config needs --client ${CLIENTS.join('|')}${options.client === undefined ? '' : `; got "${options.client}"`}.`);
  const agents = [...new Set(options.agent.split(',').map((name) => name.trim()).filter((name) => name !== ''))];
  const unknown = agents.find((name) => !options.agents.has(name));
  if (agents.length === 0 || unknown !== undefined) {
    throw new UsageError(`There is no policy for agent "${unknown ?? options.agent}" in ${options.policiesDir}; the agents there are: ${[...options.agents.keys()].join(', ') || 'none'}. Name one (or several, separated by commas) with --agent.`);
  }
  let url: string | null = null;
  if (options.url !== undefined) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(options.url);
    } catch {
      parsed = null;
    }
    if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.username !== '' || parsed.password !== '') {
      throw new UsageError(`--url must be the server's http(s) address ending in /mcp, such as http://127.0.0.1:3333/mcp; got "${options.url}".`);
    }
    if (options.simulator) throw new UsageError('--simulator is chosen where the HTTP server starts (`serve --transport http --simulator`), not in the client entry; leave it out with --url.');
    url = parsed.toString();
  }
  if (url === null && options.databaseProblem !== null) throw new UsageError(options.databaseProblem);
  const npx = join(dirname(options.paths.node), process.platform === 'win32' ? 'npx.cmd' : 'npx');
  const requests: EntryRequest[] = agents.map((agent) => ({
    client,
    agent,
    simulator: options.simulator,
    url,
    needsToken: url !== null || options.agents.get(agent)!.needsToken,
    paths: options.paths,
    ...(existsSync(npx) ? { npx } : {}),
  }));
  io.out(JSON.stringify(clientEntry(...requests), null, 2));
  io.err('');
  for (const line of new Set([...whereItGoes(client, process.platform, env), ...requests.flatMap(notes)])) io.err(line);
  return 0;
}
