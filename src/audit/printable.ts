/**
 * Text from agents, clients and webhook senders ends up on people's terminals and pages (`audit list`, list_logs
 * summaries, approval prompts). Control characters could move the cursor or erase lines (ESC sequences), line breaks
 * could forge a row, bidi controls could reverse what is read. Wherever such text is printed or summarised it passes
 * through here: each such character becomes a visible escape such as \u001b. The audit rows keep the text as it came.
 */
// C0 controls and DEL, C1 controls, bidi marks, embeddings, overrides and isolates, line and paragraph separators,
// zero-width characters and the byte order mark.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A name someone else chose (a tool, a client), quoted and cut short for a message. */
export function quoted(text: string, max = 64): string {
  return `"${printable(text.length > max ? `${text.slice(0, max)}...` : text)}"`;
}
