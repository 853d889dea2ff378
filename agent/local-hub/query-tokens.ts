/** Tokens of the IoT Hub query subset (see query.ts). */
import { LocalHubError } from './errors.js';

export interface Token {
  kind: 'word' | 'escaped' | 'string' | 'number' | 'punct';
  text: string;
  /** Offset in the query text, for error messages. */
  at: number;
}

const WORD = /[A-Za-z_$][A-Za-z0-9_$]*/y;
const NUMBER = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
const PUNCT = /<=|>=|!=|<>|[=<>(),.*]/y;

function fail(message: string, at: number): never {
  throw new LocalHubError('PW_LOCALHUB_BAD_QUERY', `query: ${message} at character ${at + 1}`);
}

function sticky(re: RegExp, text: string, at: number): string | null {
  re.lastIndex = at;
  return re.exec(text)?.[0] ?? null;
}

function readString(text: string, start: number): { value: string; end: number } {
  let value = '';
  let i = start + 1;
  for (;;) {
    if (i >= text.length) fail('unterminated string', start);
    const ch = text[i];
    if (ch === "'") {
      if (text[i + 1] === "'") {
        value += "'";
        i += 2;
        continue;
      }
      return { value, end: i + 1 };
    }
    value += ch;
    i += 1;
  }
}

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i] ?? '';
    if (/\s/.test(ch)) {
      i += 1;
      continue;
    }
    if (ch === "'") {
      const { value, end } = readString(text, i);
      tokens.push({ kind: 'string', text: value, at: i });
      i = end;
      continue;
    }
    if (text.startsWith('[[', i)) {
      const end = text.indexOf(']]', i + 2);
      if (end < 0 || end === i + 2) fail('unterminated or empty [[name]]', i);
      tokens.push({ kind: 'escaped', text: text.slice(i + 2, end), at: i });
      i = end + 2;
      continue;
    }
    const word = sticky(WORD, text, i);
    if (word) {
      tokens.push({ kind: 'word', text: word, at: i });
      i += word.length;
      continue;
    }
    const num = sticky(NUMBER, text, i);
    if (num) {
      tokens.push({ kind: 'number', text: num, at: i });
      i += num.length;
      continue;
    }
    const punct = sticky(PUNCT, text, i);
    if (punct) {
      tokens.push({ kind: 'punct', text: punct, at: i });
      i += punct.length;
      continue;
    }
    fail(`unexpected ${JSON.stringify(ch)}`, i);
  }
  return tokens;
}
