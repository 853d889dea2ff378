/**
 * Scrubs secrets from text before it reaches a log line or an error message: account keys,
 * shared access keys, SAS signatures (sig=…) and whole SharedAccessSignature tokens.
 * Lives in sync/ because both the uploader and the agent need it and sync/ may be imported by both.
 */
const PATTERNS: ReadonlyArray<[RegExp, string]> = [
  [/(AccountKey|SharedAccessKey|SharedAccessSignature|SharedAccessKeyName)=([^;&\s"']+)/gi, '$1=[redacted]'],
  [/([?&](?:sig|se|sv|sp|spr|srt|ss|st|skoid|sktid|skt|ske|sks|skv)=)[^&\s"']+/gi, '$1[redacted]'],
  [/SharedAccessSignature sr=[^\s"']+/g, 'SharedAccessSignature [redacted]'],
  [/(Bearer\s+)[A-Za-z0-9._~+/=-]+/g, '$1[redacted]'],
];

export function redactSecrets(text: string): string {
  let out = text;
  for (const [re, rep] of PATTERNS) out = out.replace(re, rep);
  return out;
}

/** An error's message with secrets removed, for logs and status fields. */
export function safeErrorMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return redactSecrets(msg);
}
