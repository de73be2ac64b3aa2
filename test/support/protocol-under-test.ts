/**
 * Which protocol generation the end-to-end suites' clients speak: 2025-11-25 (initialize, sessions, the server asks
 * mid-call), as the clients people run today, or, with MIM_TEST_PROTOCOL=2026-07-28, the new one (no sessions, every
 * request stands alone, a question for the person comes back as an "input required" result and the SDK client
 * repeats the call with the answer). Both are the SDK's own client; only its negotiation differs.
 */
import type { ClientOptions } from '@modelcontextprotocol/client';

export const MODERN = '2026-07-28';

export const PROTOCOL: 'legacy' | 'modern' = process.env.MIM_TEST_PROTOCOL === MODERN ? 'modern' : 'legacy';

/** The client's negotiation for the protocol under test: pinned, so a server that cannot speak it fails the test. */
export function negotiation(protocol: 'legacy' | 'modern' = PROTOCOL): Pick<ClientOptions, 'versionNegotiation'> {
  return protocol === 'modern' ? { versionNegotiation: { mode: { pin: MODERN } } } : {};
}
