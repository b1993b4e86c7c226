/**
 * A small strict parser for XML property lists (Apple's plist DTD), for tests on machines without plutil:
 * it accepts exactly the plist grammar (dict of key/value pairs, array, string, integer, real, true, false,
 * date, data) and throws on anything else — unknown elements, a key without a value, duplicate keys,
 * unbalanced tags, stray text, bad entities.
 */
export type PlistValue = string | number | boolean | Date | Buffer | PlistValue[] | { [key: string]: PlistValue };

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(text: string): string {
  if (/&(?![a-z]+;|#\d+;|#x[0-9a-f]+;)/i.test(text)) throw new Error('bare & in text');
  return text.replace(/&([^;]*);/g, (_, name: string) => {
    if (name in ENTITIES) return ENTITIES[name]!;
    const m = /^#(x[0-9a-f]+|\d+)$/i.exec(name);
    if (!m) throw new Error(`unknown entity &${name};`);
    return String.fromCodePoint(m[1]!.startsWith('x') ? parseInt(m[1]!.slice(1), 16) : Number(m[1]));
  });
}

export function parsePlist(text: string): PlistValue {
  let i = 0;
  const skipMisc = () => {
    for (;;) {
      const ws = /^\s*/.exec(text.slice(i))![0].length;
      i += ws;
      if (text.startsWith('<!--', i)) {
        const end = text.indexOf('-->', i);
        if (end < 0) throw new Error('unterminated comment');
        i = end + 3;
      } else return;
    }
  };
  if (!text.startsWith('<?xml version="1.0" encoding="UTF-8"?>')) throw new Error('missing XML declaration');
  i = text.indexOf('?>') + 2;
  skipMisc();
  const doctype = '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">';
  if (!text.startsWith(doctype, i)) throw new Error('missing plist DOCTYPE');
  i += doctype.length;
  skipMisc();
  if (!text.startsWith('<plist version="1.0">', i)) throw new Error('missing <plist version="1.0">');
  i += '<plist version="1.0">'.length;

  const tag = (): { name: string; close: boolean; empty: boolean } => {
    skipMisc();
    const m = /^<(\/?)([a-z]+)\s*(\/?)>/.exec(text.slice(i));
    if (!m) throw new Error(`expected a tag at offset ${i}: ${JSON.stringify(text.slice(i, i + 30))}`);
    i += m[0].length;
    return { name: m[2]!, close: m[1] === '/', empty: m[3] === '/' };
  };
  const textUntilClose = (name: string): string => {
    const end = text.indexOf(`</${name}>`, i);
    if (end < 0) throw new Error(`unterminated <${name}>`);
    const raw = text.slice(i, end);
    if (raw.includes('<')) throw new Error(`markup inside <${name}>`);
    i = end + name.length + 3;
    return decode(raw);
  };
  const value = (t: { name: string; close: boolean; empty: boolean }): PlistValue => {
    if (t.close) throw new Error(`unexpected </${t.name}>`);
    switch (t.name) {
      case 'true':
      case 'false':
        if (!t.empty) throw new Error(`<${t.name}> must be empty`);
        return t.name === 'true';
      case 'string':
        return t.empty ? '' : textUntilClose('string');
      case 'integer': {
        const s = textUntilClose('integer').trim();
        if (!/^[+-]?\d+$/.test(s)) throw new Error(`bad integer ${JSON.stringify(s)}`);
        return Number(s);
      }
      case 'real': {
        const s = textUntilClose('real').trim();
        if (!Number.isFinite(Number(s)) || s === '') throw new Error(`bad real ${JSON.stringify(s)}`);
        return Number(s);
      }
      case 'date': {
        const s = textUntilClose('date').trim();
        if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(s)) throw new Error(`bad date ${s}`);
        return new Date(s);
      }
      case 'data':
        return Buffer.from(textUntilClose('data').replace(/\s+/g, ''), 'base64');
      case 'array': {
        const out: PlistValue[] = [];
        if (t.empty) return out;
        for (;;) {
          const n = tag();
          if (n.close && n.name === 'array') return out;
          out.push(value(n));
        }
      }
      case 'dict': {
        const out: Record<string, PlistValue> = {};
        if (t.empty) return out;
        for (;;) {
          const k = tag();
          if (k.close && k.name === 'dict') return out;
          if (k.name !== 'key' || k.close || k.empty) throw new Error(`expected <key> in <dict>, found <${k.close ? '/' : ''}${k.name}>`);
          const key = textUntilClose('key');
          if (key in out) throw new Error(`duplicate key ${key}`);
          const v = tag();
          if (v.name === 'key' || v.close) throw new Error(`key ${key} has no value`);
          out[key] = value(v);
        }
      }
      default:
        throw new Error(`<${t.name}> is not a plist element`);
    }
  };
  const root = value(tag());
  const end = tag();
  if (!end.close || end.name !== 'plist') throw new Error('expected </plist> after the root value');
  skipMisc();
  if (i !== text.length) throw new Error('content after </plist>');
  return root;
}
