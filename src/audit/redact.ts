/**
 * What of a call's arguments may be written down. Secrets are dropped by key, e-mail addresses are masked wherever they
 * appear in text, and the whole is bounded so a hostile argument cannot bloat the log.
 */
const SECRET_KEY = /(api[_-]?key|access[_-]?token|token|secret|password|authorization|bearer)/i;
// The lookbehind starts a match only where a local part starts, so a long run without "@" is scanned once, not once
// per character (the plain pattern took 14 s on 100,000 characters).
const EMAIL = /(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})/g;
/** A local part and "@" cut off at the end of a truncated text: masked too. */
const CUT_EMAIL = /(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@[A-Za-z0-9.-]*$/;
const MAX_STRING = 512;
const MAX_ARGUMENTS_JSON = 4096;
const MAX_DEPTH = 6;

/** "jane.doe@example.com" becomes "j***@example.com": enough to tell customers apart, not enough to contact them. */
export function maskEmails(text: string): string {
  return text.replace(EMAIL, (_match, first: string, domain: string) => `${first}***@${domain}`);
}

export function redactArguments(value: unknown): string | null {
  if (value === undefined) return null;
  const json = JSON.stringify(redactValue(value, 0));
  if (json === undefined) return null;
  return json.length > MAX_ARGUMENTS_JSON ? JSON.stringify({ truncated: true, prefix: json.slice(0, MAX_ARGUMENTS_JSON - 64) }) : json;
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') {
    if (value.length <= MAX_STRING) return maskEmails(value);
    // Only what is kept is scanned, so the work is bounded whatever an agent sends.
    const kept = maskEmails(value.slice(0, MAX_STRING)).replace(CUT_EMAIL, (_match, first: string) => `${first}***@...`);
    return `${kept}... (${value.length} characters)`;
  }
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  if (Array.isArray(value)) return value.slice(0, 50).map((item) => redactValue(item, depth + 1));
  if (typeof value === 'object') {
    // A null prototype, so a key named __proto__ is stored as data, never as the object's prototype.
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [key, item] of Object.entries(value as Record<string, unknown>).slice(0, 50)) {
      out[key] = SECRET_KEY.test(key) ? '[redacted]' : redactValue(item, depth + 1);
    }
    return out;
  }
  return String(typeof value);
}
