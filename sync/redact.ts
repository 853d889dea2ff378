/**
 * Scrubs secrets from text before it reaches a log line, an error message or a status field: account
 * keys, shared access keys, SAS parameters (sig=…, se=…, …) and whole SharedAccessSignature tokens,
 * SharedKey authorization values and Bearer tokens. The one redactor of the project: the agent and
 * the trainer both use it (sync/ may be imported by both).
 *
 * Text arrives in many encodings: a proxy's HTML page echoes a URL with `&amp;`, a URL pasted through
 * an encoder has `%26sig%3D`, JSON has `"AccountKey":"…"` or `\u0026`. A value never runs past a
 * backslash or a quote, so the patterns are also safe on a serialised JSON line.
 */

/** SAS query parameters (sig is the signature; the others date, scope or grant it). */
const SAS_PARAMS = 'sig|se|sv|sp|spr|srt|ss|st|skoid|sktid|skt|ske|sks|skv|sdd|ses';
/** A word's start, also right after a JSON-escaped line break or tab (`\n` is a word character's neighbour there). */
const START = String.raw`(?:\b|(?<=\\[nrt]))`;
/**
 * What may come before a SAS parameter: a line's start (also JSON-escaped), `?`, `&`, `;` (which
 * also ends `&amp;`), `%26`, `%3F` (once or twice encoded), JSON's `\u0026`.
 */
const SAS_BEFORE = String.raw`^|[?&;]|%(?:25)?(?:26|3F)|\\u0026|\\[nrt]`;
/** `=`, once or twice percent-encoded. */
const SAS_EQUALS = String.raw`=|%(?:25)?3D`;
/**
 * A value ends at a separator, a space, a quote, a bracket, a comma, a backslash or an encoded `&`
 * (so `[redacted]` is left as it is, and a JSON line stays JSON).
 */
const VALUE = String.raw`(?:(?!%(?:25)?26)[^&;,\s"'<>\\()[\]{}])+`;

/** Each pattern with a cheap test (on the text in lower case) of whether it can match at all: most log text has no secret. */
const PATTERNS: ReadonlyArray<{ re: RegExp; to: string; may: (lower: string) => boolean }> = [
  // An IoT Hub token: `SharedAccessSignature sr=…&sig=…&se=…`.
  { re: /SharedAccessSignature sr=[^\s"'<>\\]+/g, to: 'SharedAccessSignature [redacted]', may: (t) => t.includes('sharedaccesssignature sr=') },
  // Connection string parts and their other forms: `AccountKey=…`, `AccountKey = …`, `"AccountKey":"…"`, `accountKey: …`.
  {
    re: new RegExp(String.raw`${START}(AccountKey|SharedAccessKey|SharedAccessSignature|SharedAccessKeyName|sig)(\s*=\s*|\\?["']\s*:\s*\\?["']|\s*:\s*)${VALUE}`, 'gi'),
    to: '$1$2[redacted]',
    may: (t) => t.includes('accountkey') || t.includes('sharedaccess') || t.includes('sig'),
  },
  // SAS parameters in a URL, however encoded.
  { re: new RegExp(`(${SAS_BEFORE})((?:${SAS_PARAMS})(?:${SAS_EQUALS}))${VALUE}`, 'gim'), to: '$1$2[redacted]', may: (t) => t.includes('=') || t.includes('%3d') || t.includes('%253d') },
  // An `Authorization: SharedKey account:<HMAC>` value.
  { re: new RegExp(String.raw`${START}(SharedKey(?:Lite)?\s+[^:\s"'<>\\]+:)[A-Za-z0-9+/=%]+`, 'g'), to: '$1[redacted]', may: (t) => t.includes('sharedkey') },
  { re: new RegExp(String.raw`${START}(Bearer\s+)[A-Za-z0-9._~+/=-]+`, 'g'), to: '$1[redacted]', may: (t) => t.includes('bearer') },
];

/** Signs that a text may hold a secret: every pattern needs one of them. */
const MAY_HOLD_SECRET = /[=:]|%(?:25)?3D|Bearer/i;

export function redactSecrets(text: string): string {
  if (!MAY_HOLD_SECRET.test(text)) return text;
  const lower = text.toLowerCase();
  let out = text;
  for (const { re, to, may } of PATTERNS) if (may(lower)) out = out.replace(re, to);
  return out;
}

/** An error's message with secrets removed, for logs and status fields. */
export function safeErrorMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return redactSecrets(msg);
}

/** A service error code fit to repeat (AuthorizationFailure, ECONNREFUSED); anything else is left out. */
export function plainCode(code: unknown): string | undefined {
  return typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : undefined;
}

/**
 * The first line of an error's message with secrets removed, at most 300 characters: a service's
 * message ends with RequestId/Time lines (the first says what is wrong), and a page of HTML is cut short.
 */
export function safeFirstLine(err: unknown): string {
  return (safeErrorMessage(err).split('\n')[0] ?? '').slice(0, 300);
}

/**
 * An error's call frames (its stack's `    at …` lines), each after a newline; '' when it has none.
 * Never the stack's first lines: they repeat the message, which for an SDK error is the response
 * body over several lines (a signature, an authorization header), unredacted.
 */
export function safeStackFrames(err: unknown): string {
  const stack = typeof err === 'object' && err !== null ? (err as { stack?: unknown }).stack : undefined;
  if (typeof stack !== 'string') return '';
  return stack
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .map((line) => `\n${redactSecrets(line)}`)
    .join('');
}
