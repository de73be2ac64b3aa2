/**
 * Which Mollie credential this process uses, read from the environment once. A live credential is refused unless
 * the operator opted in with MOLLIE_MCP_ALLOW_LIVE=1: an agent should never reach real money by accident.
 * Error messages name the variable, never its value.
 */
import type { MollieMode } from './port.js';

export const DEFAULT_MOLLIE_API_ENDPOINT = 'https://api.mollie.com/v2/';

export type MollieCredentials =
  | { kind: 'api_key'; apiKey: string; mode: MollieMode; apiEndpoint: string }
  | { kind: 'access_token'; accessToken: string; profileId: string; mode: MollieMode; apiEndpoint: string };

export class CredentialError extends Error {
  override readonly name = 'CredentialError';
}

type Env = Readonly<Record<string, string | undefined>>;

/** The credential in `env`, or null when none is configured (the caller decides whether the simulator may stand in). */
export function readMollieCredentials(env: Env): MollieCredentials | null {
  const apiKey = nonEmpty(env.MOLLIE_API_KEY);
  const accessToken = nonEmpty(env.MOLLIE_ACCESS_TOKEN);
  if (apiKey && accessToken) {
    throw new CredentialError('Both MOLLIE_API_KEY and MOLLIE_ACCESS_TOKEN are set: set only one, so it is clear which account is used.');
  }
  if (!apiKey && !accessToken) return null;
  const apiEndpoint = readApiEndpoint(env.MOLLIE_API_ENDPOINT);
  const liveAllowed = env.MOLLIE_MCP_ALLOW_LIVE === '1';

  if (apiKey) {
    const prefix = /^(test|live)_[A-Za-z0-9]{8,}$/.exec(apiKey);
    if (!prefix) {
      throw new CredentialError('MOLLIE_API_KEY does not look like a Mollie API key: it must start with test_ or live_ followed by letters and digits.');
    }
    const mode: MollieMode = prefix[1] === 'live' ? 'live' : 'test';
    if (mode === 'live' && !liveAllowed) {
      throw new CredentialError(
        'MOLLIE_API_KEY is a live key, which moves real money. Set MOLLIE_MCP_ALLOW_LIVE=1 to allow live mode, or use a test_ key.',
      );
    }
    return { kind: 'api_key', apiKey, mode, apiEndpoint };
  }

  if (!/^access_[A-Za-z0-9]{8,}$/.test(accessToken!)) {
    throw new CredentialError('MOLLIE_ACCESS_TOKEN does not look like a Mollie access token: it must start with access_.');
  }
  const profileId = nonEmpty(env.MOLLIE_PROFILE_ID);
  if (!profileId || !/^pfl_[A-Za-z0-9]+$/.test(profileId)) {
    throw new CredentialError('MOLLIE_ACCESS_TOKEN needs MOLLIE_PROFILE_ID set to the profile to use (pfl_...).');
  }
  const testmode = env.MOLLIE_TESTMODE;
  if (testmode !== undefined && testmode !== '' && testmode !== '0' && testmode !== '1') {
    throw new CredentialError('MOLLIE_TESTMODE must be 1 (test mode, the default) or 0 (live mode).');
  }
  const mode: MollieMode = testmode === '0' ? 'live' : 'test';
  if (mode === 'live' && !liveAllowed) {
    throw new CredentialError(
      'MOLLIE_TESTMODE=0 asks for live mode, which moves real money. Set MOLLIE_MCP_ALLOW_LIVE=1 to allow it, or leave MOLLIE_TESTMODE unset for test mode.',
    );
  }
  return { kind: 'access_token', accessToken: accessToken!, profileId, mode, apiEndpoint };
}

function readApiEndpoint(raw: string | undefined): string {
  const value = nonEmpty(raw);
  if (!value) return DEFAULT_MOLLIE_API_ENDPOINT;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CredentialError('MOLLIE_API_ENDPOINT is not a URL: use the form https://api.mollie.com/v2/.');
  }
  // @mollie/api-client only speaks https (its own agent); plain http would fail on every call.
  if (url.protocol !== 'https:') throw new CredentialError('MOLLIE_API_ENDPOINT must be an https URL.');
  if (url.username || url.password) throw new CredentialError('MOLLIE_API_ENDPOINT must not carry credentials; use MOLLIE_API_KEY.');
  return url.href.endsWith('/') ? url.href : `${url.href}/`;
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}
