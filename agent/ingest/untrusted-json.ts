/**
 * JSON from outside the agent (POST /readings, IoT Edge input messages), handled at a cost bounded
 * by its size. V8's JSON.parse of deeply nested arrays is slow (a 16 MB body of readings whose
 * values nested 4 000 levels deep took 16 s, the event loop blocked) and JSON.stringify of such a
 * value overflows the stack; a reading never nests deeper than 3 (array, reading, values).
 */

/** Deepest nesting of arrays and objects taken; deeper text is refused before it is parsed. */
export const MAX_JSON_DEPTH = 16;

/** How much of a refused item the rejected table keeps (its own cap, BufferStore's rejectedRawMaxChars, is the same by default). */
export const RAW_PREVIEW_CHARS = 4096;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Where `text` first opens an array or object deeper than `max` (outside strings), as a 1-based
 * line and column; null when it does not. One pass, stopping there; strings are skipped with
 * indexOf (on a body of readings a quarter to a third of what JSON.parse then takes, where a
 * test of every character took three quarters). It does not check the rest is JSON: JSON.parse
 * does that next, and an unterminated string ends the pass (JSON.parse refuses it).
 */
export function deepNesting(text: string, max = MAX_JSON_DEPTH): { line: number; column: number } | null {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // the closing quote: the next one not escaped, i.e. after an even run of backslashes
      do {
        i = text.indexOf('"', i + 1);
        if (i < 0) return null;
      } while (escaped(text, i));
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return position(text, i);
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return null;
}

function escaped(text: string, quote: number): boolean {
  let k = quote - 1;
  while (text.charCodeAt(k) === BACKSLASH) k--;
  return (quote - 1 - k) % 2 === 1;
}

function position(text: string, i: number): { line: number; column: number } {
  let line = 1;
  for (let n = text.indexOf('\n'); n !== -1 && n < i; n = text.indexOf('\n', n + 1)) line++;
  return { line, column: i - text.lastIndexOf('\n', i - 1) };
}

/** The reason given for text nested too deep at `where` ("line 3, column 17", "column 17"). */
export function tooDeepReason(where: string, max = MAX_JSON_DEPTH): string {
  return `arrays and objects nested deeper than ${max} levels (at ${where}); a reading nests 3 deep at most`;
}

/**
 * The JSON text of a refused item for the rejected table, cut at `max` characters (the cut marked):
 * its work stops there however large or deep the item, and it never throws (a cycle, or nesting
 * deeper than MAX_JSON_DEPTH, is written as `"…"`, a BigInt as its digits). Otherwise the text
 * JSON.stringify writes.
 */
export function jsonPreview(value: unknown, max = RAW_PREVIEW_CHARS): string {
  const mark = `…[cut: over ${max} chars]`;
  const parts: string[] = [];
  let size = 0;
  const full = (): boolean => size > max;
  const put = (s: string): void => {
    parts.push(s);
    size += s.length;
  };
  const seen = new Set<object>();
  const write = (v: unknown, depth: number): void => {
    if (typeof v === 'string') return put(JSON.stringify(v.length > max ? v.slice(0, max + 1) : v));
    if (typeof v === 'number' || typeof v === 'boolean' || v === null) return put(JSON.stringify(v));
    if (typeof v === 'bigint') return put(String(v));
    if (typeof v !== 'object') return put('null'); // undefined, a function, a symbol
    if (depth > MAX_JSON_DEPTH || seen.has(v)) return put('"…"');
    const toJson = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJson === 'function') return write(toJson.call(v), depth + 1); // a Date
    seen.add(v);
    if (Array.isArray(v)) {
      put('[');
      for (let i = 0; i < v.length && !full(); i++) {
        if (i > 0) put(',');
        const item: unknown = v[i];
        write(item === undefined || typeof item === 'function' || typeof item === 'symbol' ? null : item, depth + 1);
      }
      put(']');
    } else {
      put('{');
      let first = true;
      for (const key in v) {
        if (full()) break;
        if (!Object.hasOwn(v, key)) continue;
        const item: unknown = (v as Record<string, unknown>)[key];
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
        put(`${first ? '' : ','}${JSON.stringify(key.length > max ? key.slice(0, max + 1) : key)}:`);
        first = false;
        write(item, depth + 1);
      }
      put('}');
    }
    seen.delete(v);
  };
  try {
    write(value, 1);
  } catch {
    // a getter or proxy that throws: what was written so far is the preview
  }
  const text = parts.join('');
  return text.length <= max ? text : `${text.slice(0, max - mark.length)}${mark}`;
}
