import { describe, expect, it } from 'vitest';
import { CredentialError, DEFAULT_MOLLIE_API_ENDPOINT, readMollieCredentials } from '../../src/mollie/credentials.js';

const LIVE_KEY = 'live_liveKeyThatMustNeverLeak0123456';
const TEST_KEY = 'test_testKeyThatMustNeverLeak0123456';

function refusal(env: Record<string, string>): string {
  try {
    readMollieCredentials(env);
  } catch (error) {
    expect(error).toBeInstanceOf(CredentialError);
    const { message } = error as Error;
    for (const secret of Object.values(env)) if (secret.length > 12) expect(message).not.toContain(secret);
    return message;
  }
  throw new Error('expected the credentials to be refused');
}

describe('Mollie credentials from the environment', () => {
  it('has none when nothing is set, so the caller can say what to set', () => {
    expect(readMollieCredentials({})).toBeNull();
  });

  it('takes a test key in test mode against Mollie by default', () => {
    expect(readMollieCredentials({ MOLLIE_API_KEY: TEST_KEY })).toEqual({
      kind: 'api_key',
      apiKey: TEST_KEY,
      mode: 'test',
      apiEndpoint: DEFAULT_MOLLIE_API_ENDPOINT,
    });
  });

  it('refuses a live key without MOLLIE_MCP_ALLOW_LIVE=1, and says how to allow it', () => {
    const message = refusal({ MOLLIE_API_KEY: LIVE_KEY });
    expect(message).toMatch(/live key/);
    expect(message).toMatch(/MOLLIE_MCP_ALLOW_LIVE=1/);
    expect(refusal({ MOLLIE_API_KEY: LIVE_KEY, MOLLIE_MCP_ALLOW_LIVE: 'true' })).toMatch(/MOLLIE_MCP_ALLOW_LIVE=1/);
  });

  it('takes a live key once the operator opted in', () => {
    expect(readMollieCredentials({ MOLLIE_API_KEY: LIVE_KEY, MOLLIE_MCP_ALLOW_LIVE: '1' })).toMatchObject({ kind: 'api_key', mode: 'live' });
  });

  it('takes an organization token with its profile, in test mode unless MOLLIE_TESTMODE=0', () => {
    const env = { MOLLIE_ACCESS_TOKEN: 'access_orgToken0123456789', MOLLIE_PROFILE_ID: 'pfl_QkEhN94Ba' };
    expect(readMollieCredentials(env)).toMatchObject({ kind: 'access_token', profileId: 'pfl_QkEhN94Ba', mode: 'test' });
    expect(refusal({ ...env, MOLLIE_TESTMODE: '0' })).toMatch(/MOLLIE_MCP_ALLOW_LIVE=1/);
    expect(readMollieCredentials({ ...env, MOLLIE_TESTMODE: '0', MOLLIE_MCP_ALLOW_LIVE: '1' })).toMatchObject({ mode: 'live' });
    expect(refusal({ ...env, MOLLIE_TESTMODE: 'yes' })).toMatch(/MOLLIE_TESTMODE must be 1/);
    expect(refusal({ MOLLIE_ACCESS_TOKEN: 'access_orgToken0123456789' })).toMatch(/MOLLIE_PROFILE_ID/);
  });

  it('refuses a key that is not a Mollie key, or two credentials at once, without echoing them', () => {
    expect(refusal({ MOLLIE_API_KEY: 'sk_live_51HstripeLooking0123' })).toMatch(/test_ or live_/);
    expect(refusal({ MOLLIE_API_KEY: TEST_KEY, MOLLIE_ACCESS_TOKEN: 'access_orgToken0123456789' })).toMatch(/only one/);
  });

  it('takes an https MOLLIE_API_ENDPOINT, and refuses plain http or embedded credentials', () => {
    expect(readMollieCredentials({ MOLLIE_API_KEY: TEST_KEY, MOLLIE_API_ENDPOINT: 'https://mollie-proxy.example.com/v2' })).toMatchObject({
      apiEndpoint: 'https://mollie-proxy.example.com/v2/',
    });
    expect(refusal({ MOLLIE_API_KEY: TEST_KEY, MOLLIE_API_ENDPOINT: 'http://127.0.0.1:8080/v2/' })).toMatch(/https/);
    expect(refusal({ MOLLIE_API_KEY: TEST_KEY, MOLLIE_API_ENDPOINT: 'https://user:pass@proxy.example.com/' })).toMatch(/credentials/);
    expect(refusal({ MOLLIE_API_KEY: TEST_KEY, MOLLIE_API_ENDPOINT: 'not a url' })).toMatch(/not a URL/);
  });
});
