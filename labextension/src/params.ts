/**
 * Typed notebook parameters: the text a user types turned into the value the notebook's
 * default has (int, float, bool, str, list, dict, tuple), with the same one-line message
 * as the CLI (`parameter 'lr' wants a float, got '0.1x'`) so an error shows before submitting.
 * The server checks again and its 400 message is shown in the same place.
 */

export interface Param {
  name: string;
  default: unknown;
  type: string; // int, float, str, bool, list, dict, tuple, None, expression
  help: string;
}

export class ParamError extends Error {}

const article = (kind: string) => (/^[aeiou]/.test(kind) ? `an ${kind}` : `a ${kind}`);

/** A Python literal (numbers, strings, True/False/None, lists, tuples, dicts) as JSON. */
export function pyLiteral(text: string): unknown {
  let i = 0;
  const s = text;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i])) {
      i++;
    }
  };
  const fail = (): never => {
    throw new SyntaxError(text);
  };
  const value = (): unknown => {
    ws();
    const ch = s[i];
    if (ch === '[' || ch === '(') {
      const close = ch === '[' ? ']' : ')';
      i++;
      const items: unknown[] = [];
      ws();
      while (s[i] !== close) {
        items.push(value());
        ws();
        if (s[i] === ',') {
          i++;
          ws();
        } else if (s[i] !== close) {
          fail();
        }
      }
      i++;
      return items;
    }
    if (ch === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      while (s[i] !== '}') {
        const key = value();
        ws();
        if (s[i++] !== ':') {
          fail();
        }
        obj[String(key)] = value();
        ws();
        if (s[i] === ',') {
          i++;
          ws();
        } else if (s[i] !== '}') {
          fail();
        }
      }
      i++;
      return obj;
    }
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      let out = '';
      while (j < s.length && s[j] !== ch) {
        if (s[j] === '\\' && j + 1 < s.length) {
          const e = s[++j];
          out += e === 'n' ? '\n' : e === 't' ? '\t' : e;
        } else {
          out += s[j];
        }
        j++;
      }
      if (j >= s.length) {
        fail();
      }
      i = j + 1;
      return out;
    }
    const m = /^(True|False|None|[-+]?(\d[\d_]*\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|inf|nan))/.exec(s.slice(i));
    if (!m) {
      fail();
    }
    i += m![0].length;
    const word = m![0];
    if (word === 'True' || word === 'False') {
      return word === 'True';
    }
    if (word === 'None') {
      return null;
    }
    return Number(word.replace(/_/g, ''));
  };
  const out = value();
  ws();
  if (i !== s.length) {
    fail();
  }
  return out;
}

const TRUE = ['true', '1', 'yes', 'y', 'on'];
const FALSE = ['false', '0', 'no', 'n', 'off'];

/** The typed value of ``raw`` for ``p``, or a ParamError in the CLI's words. */
export function convert(p: Param, raw: string): unknown {
  const wrong = () => new ParamError(`parameter '${p.name}' wants ${article(p.type)}, got '${raw}'`);
  const text = raw.trim();
  switch (p.type) {
    case 'str':
      return raw;
    case 'bool':
      if (TRUE.includes(text.toLowerCase())) {
        return true;
      }
      if (FALSE.includes(text.toLowerCase())) {
        return false;
      }
      throw wrong();
    case 'int':
      if (!/^[-+]?\d[\d_]*$/.test(text)) {
        throw wrong();
      }
      return parseInt(text.replace(/_/g, ''), 10);
    case 'float':
      if (!/^[-+]?(\d[\d_]*\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|inf|infinity|nan)$/i.test(text)) {
        throw wrong();
      }
      return Number(text.replace(/_/g, ''));
  }
  let value: unknown;
  try {
    value = pyLiteral(text);
  } catch {
    if (p.type === 'None' || p.type === 'expression') {
      return raw; // no declared type: the text as written, as the CLI keeps it
    }
    throw wrong();
  }
  const ok = p.type === 'None' || p.type === 'expression' || value === null ||
    ((p.type === 'list' || p.type === 'tuple') && Array.isArray(value)) ||
    (p.type === 'dict' && typeof value === 'object' && !Array.isArray(value));
  if (!ok) {
    throw wrong();
  }
  return value;
}

/** A default as Python writes it, for the field's initial text. */
export function pyRepr(value: unknown, type?: string): string {
  if (value === null || value === undefined) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number') {
    return type === 'float' && Number.isInteger(value) ? value.toFixed(1) : String(value);
  }
  const inner = (v: unknown) => (typeof v === 'string' ? `'${v.replace(/'/g, "\\'")}'` : pyRepr(v));
  if (Array.isArray(value)) {
    const body = value.map(inner).join(', ');
    return type === 'tuple' ? `(${body}${value.length === 1 ? ',' : ''})` : `[${body}]`;
  }
  return `{${Object.entries(value as object).map(([k, v]) => `${inner(k)}: ${inner(v)}`).join(', ')}}`;
}

/** True when two typed values are the same (so an unchanged field sends nothing). */
export function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
