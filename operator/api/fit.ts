// Makes a value the operator is about to write fit its schema's length limits, so that no text it composes (a
// worker's failure message with the operator's words around it, a list of errors, a path) can make the API server
// refuse a whole status write. Strings over maxLength are cut, saying so; arrays over maxItems keep their first
// items. Everything else is left as it is: this bounds sizes, it does not validate.
import type { TSchema } from '@sinclair/typebox';

const MARK = ' …[cut]';

/** `text` in at most `max` characters (Unicode code points, as JSON Schema and the API server count them). */
export function cutText(text: string, max: number): string {
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  if (max <= MARK.length) return chars.slice(0, max).join('');
  return chars.slice(0, max - MARK.length).join('') + MARK;
}

interface Node {
  type?: string | string[];
  maxLength?: number;
  maxItems?: number;
  properties?: Record<string, Node>;
  additionalProperties?: boolean | Node;
  items?: Node;
  anyOf?: Node[];
  oneOf?: Node[];
  allOf?: Node[];
}

/** A copy of `value` cut to the limits `schema` sets, or `value` itself when nothing is over. */
export function fitToSchema<T>(schema: TSchema, value: T): T {
  return fit(schema as Node, value) as T;
}

function fit(node: Node | undefined, value: unknown): unknown {
  if (!node) return value;
  for (const branch of [...(node.allOf ?? []), ...(node.anyOf ?? []), ...(node.oneOf ?? [])]) value = fit(branch, value);
  if (typeof value === 'string') return node.maxLength !== undefined ? cutText(value, node.maxLength) : value;
  if (Array.isArray(value)) {
    const kept = node.maxItems !== undefined && value.length > node.maxItems ? value.slice(0, node.maxItems) : value;
    const items = kept.map((v) => fit(node.items, v));
    return items.every((v, i) => v === value[i]) && kept.length === value.length ? value : items;
  }
  if (typeof value === 'object' && value !== null && !(value instanceof Date)) {
    let out: Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(value)) {
      const child = node.properties?.[k] ?? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
      const f = fit(child, v);
      if (f !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = f;
    }
    return out ?? value;
  }
  return value;
}
