/**
 * DNS-rebinding protection, as the MCP transport spec asks of local servers: a web page in the user's browser must
 * not be able to reach this server, whatever name its DNS points at 127.0.0.1. The Host header must name this server,
 * and a browser's Origin must be this server's own localhost origin or one the operator allowed.
 */
import type { IncomingHttpHeaders } from 'node:http';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

export interface OriginRules {
  /** Host names (no port) this server answers to. */
  hostnames: ReadonlySet<string>;
  /** Origins allowed besides same-host localhost ones, e.g. https://console.example.com. */
  origins: ReadonlySet<string>;
}

export function originRules(options: { bindHost: string; allowedOrigins: readonly string[]; publicUrls: readonly (string | null)[] }): OriginRules {
  const hostnames = new Set(LOOPBACK_NAMES);
  if (!['0.0.0.0', '::', ''].includes(options.bindHost)) hostnames.add(options.bindHost.includes(':') && !options.bindHost.startsWith('[') ? `[${options.bindHost}]` : options.bindHost.toLowerCase());
  for (const url of [...options.allowedOrigins, ...options.publicUrls]) {
    if (url !== null) hostnames.add(new URL(url).hostname.toLowerCase());
  }
  return { hostnames, origins: new Set(options.allowedOrigins) };
}

export type HeaderProblem = { reason: 'host_not_allowed' | 'origin_not_allowed'; message: string };

function hostnameOf(host: string): string | null {
  try {
    return new URL(`http://${host}`).hostname.toLowerCase();
  } catch {
    return null;
  }
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

export function checkHeaders(headers: IncomingHttpHeaders, rules: OriginRules): HeaderProblem | null {
  const host = headers.host ?? '';
  const hostname = hostnameOf(host);
  if (hostname === null || !rules.hostnames.has(hostname)) {
    return {
      reason: 'host_not_allowed',
      message: `This server does not answer to the Host "${host.slice(0, 100)}"; use http://127.0.0.1 or localhost, or add the public origin to MOLLIE_MCP_ALLOWED_ORIGINS.`,
    };
  }
  const origin = headers.origin;
  if (origin === undefined) return null;
  if (rules.origins.has(origin)) return null;
  let url: URL | null = null;
  try {
    url = new URL(origin);
  } catch {
    url = null;
  }
  // Same host means the page was served by this server itself (the simulator's checkout page), on a loopback name.
  if (url !== null && (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === origin && isLoopback(url.hostname) && url.host === host.toLowerCase()) {
    return null;
  }
  return {
    reason: 'origin_not_allowed',
    message: `Requests from the web origin "${origin.slice(0, 100)}" are refused; if that page should reach this server, add it to MOLLIE_MCP_ALLOWED_ORIGINS.`,
  };
}
