/**
 * A small, honest subset of the IoT Hub query language, enough for a deploy step to find modules:
 *
 *   SELECT * FROM devices.modules [WHERE <condition>]
 *
 * <condition>: comparisons `path op literal` (op: = != <> < > <= >=; either side may be the path),
 * IS_DEFINED(path), ARRAY_CONTAINS(path, literal), combined with AND, OR, NOT and parentheses.
 * Paths are dotted property names of the twin document (deviceId, moduleId, tags.x,
 * properties.desired.x, properties.reported.x, …); a name with other characters is escaped as
 * `[[pump-17]]`, as in IoT Hub. Literals: 'single-quoted' strings ('' escapes a quote), numbers,
 * true, false, null. Keywords are case-insensitive. Anything else (projections, GROUP BY, other
 * collections, other functions) is refused with PW_LOCALHUB_BAD_QUERY rather than guessed.
 */
import { LocalHubError } from './errors.js';
import { tokenize, type Token } from './query-tokens.js';

export type Predicate = (doc: unknown) => boolean;
type Literal = string | number | boolean | null;
type Operand = { path: string[] } | { value: Literal };

const OPS = new Set(['=', '!=', '<>', '<', '>', '<=', '>=']);

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[], private readonly text: string) {}

  fail(message: string): never {
    const at = this.tokens[this.pos]?.at ?? this.text.length;
    throw new LocalHubError('PW_LOCALHUB_BAD_QUERY', `query: ${message} at character ${at + 1}`);
  }
  peek(): Token | undefined {
    return this.tokens[this.pos];
  }
  isWord(word: string): boolean {
    const t = this.peek();
    return t?.kind === 'word' && t.text.toUpperCase() === word;
  }
  isPunct(text: string): boolean {
    const t = this.peek();
    return t?.kind === 'punct' && t.text === text;
  }
  expectWord(word: string): void {
    if (!this.isWord(word)) this.fail(`expected ${word}`);
    this.pos += 1;
  }
  expectPunct(text: string): void {
    if (!this.isPunct(text)) this.fail(`expected "${text}"`);
    this.pos += 1;
  }
  atEnd(): boolean {
    return this.pos >= this.tokens.length;
  }

  query(): Predicate {
    this.expectWord('SELECT');
    this.expectPunct('*');
    this.expectWord('FROM');
    const collection = this.path().join('.').toLowerCase();
    if (collection !== 'devices.modules') this.fail('only FROM devices.modules is supported');
    let where: Predicate = () => true;
    if (this.isWord('WHERE')) {
      this.pos += 1;
      where = this.or();
    }
    if (!this.atEnd()) this.fail('unsupported clause');
    return where;
  }
  or(): Predicate {
    let left = this.and();
    while (this.isWord('OR')) {
      this.pos += 1;
      const a = left, b = this.and();
      left = (doc) => a(doc) || b(doc);
    }
    return left;
  }
  and(): Predicate {
    let left = this.unary();
    while (this.isWord('AND')) {
      this.pos += 1;
      const a = left, b = this.unary();
      left = (doc) => a(doc) && b(doc);
    }
    return left;
  }
  unary(): Predicate {
    if (this.isWord('NOT')) {
      this.pos += 1;
      const inner = this.unary();
      return (doc) => !inner(doc);
    }
    if (this.isPunct('(')) {
      this.pos += 1;
      const inner = this.or();
      this.expectPunct(')');
      return inner;
    }
    if (this.isWord('IS_DEFINED')) return this.isDefined();
    if (this.isWord('ARRAY_CONTAINS')) return this.arrayContains();
    return this.comparison();
  }
  isDefined(): Predicate {
    this.pos += 1;
    this.expectPunct('(');
    const path = this.path();
    this.expectPunct(')');
    return (doc) => resolve(doc, path) !== undefined;
  }
  arrayContains(): Predicate {
    this.pos += 1;
    this.expectPunct('(');
    const path = this.path();
    this.expectPunct(',');
    const value = this.literal();
    this.expectPunct(')');
    return (doc) => {
      const arr = resolve(doc, path);
      return Array.isArray(arr) && arr.some((item) => item === value);
    };
  }
  comparison(): Predicate {
    const left = this.operand();
    const t = this.peek();
    if (t?.kind !== 'punct' || !OPS.has(t.text)) this.fail('expected a comparison operator');
    this.pos += 1;
    const right = this.operand();
    const op = t.text;
    return (doc) => compare(valueOf(doc, left), op, valueOf(doc, right));
  }
  operand(): Operand {
    const t = this.peek();
    if (t?.kind === 'word' && !['TRUE', 'FALSE', 'NULL'].includes(t.text.toUpperCase())) return { path: this.path() };
    if (t?.kind === 'escaped') return { path: this.path() };
    return { value: this.literal() };
  }
  path(): string[] {
    const parts: string[] = [];
    for (;;) {
      const t = this.peek();
      if (t?.kind !== 'word' && t?.kind !== 'escaped') this.fail('expected a property name');
      parts.push(t.text);
      this.pos += 1;
      if (!this.isPunct('.')) return parts;
      this.pos += 1;
    }
  }
  literal(): Literal {
    const t = this.peek();
    this.pos += 1;
    if (t?.kind === 'string') return t.text;
    if (t?.kind === 'number') return Number(t.text);
    if (t?.kind === 'word') {
      const upper = t.text.toUpperCase();
      if (upper === 'TRUE') return true;
      if (upper === 'FALSE') return false;
      if (upper === 'NULL') return null;
    }
    this.pos -= 1;
    return this.fail('expected a literal (a quoted string, a number, true, false or null)');
  }
}

function resolve(doc: unknown, path: string[]): unknown {
  let current: unknown = doc;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function valueOf(doc: unknown, operand: Operand): unknown {
  return 'path' in operand ? resolve(doc, operand.path) : operand.value;
}

/** Undefined never matches; ordering only between two numbers or two strings. */
function compare(a: unknown, op: string, b: unknown): boolean {
  if (a === undefined || b === undefined) return false;
  if (op === '=') return a === b;
  if (op === '!=' || op === '<>') return a !== b;
  const ordered = (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string');
  if (!ordered) return false;
  const x = a as number | string, y = b as number | string;
  if (op === '<') return x < y;
  if (op === '>') return x > y;
  if (op === '<=') return x <= y;
  return x >= y;
}

/** Compiles a query into a predicate over twin documents; throws PW_LOCALHUB_BAD_QUERY. */
export function compileQuery(text: string): Predicate {
  return new Parser(tokenize(text), text).query();
}
