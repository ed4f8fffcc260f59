/**
 * Merging a target's parameters into the client's JSON body as text. Parsing and encoding the body again would
 * change what the client sent beyond the keys that are set: an integer past 2^53 (a 64-bit `seed`) would be
 * rounded, `1e400` would become `null`, `-0` would become `0`. Here every member left alone keeps its exact bytes.
 */

/**
 * `json` (one JSON object, already known to parse) with its top-level members named in `set` dropped, duplicates
 * included, and `set` appended, as `{ ...JSON.parse(json), ...set }` would be but for the bytes kept. A member
 * whose value is `undefined` is dropped and not appended, as JSON.stringify drops it. Null when `json` is not
 * one object after all (the caller then encodes the parsed body).
 */
export function mergeMembers(json: string, set: Readonly<Record<string, unknown>>): string | null {
  const kept: string[] = [];
  let i = skipSpace(json, 0);
  if (json[i] !== '{') return null;
  i = skipSpace(json, i + 1);
  if (json[i] === '}') i++;
  else {
    for (;;) {
      const keyEnd = json[i] === '"' ? endOfString(json, i) : -1;
      if (keyEnd < 0) return null;
      const key = JSON.parse(json.slice(i, keyEnd)) as string;
      const colon = skipSpace(json, keyEnd);
      if (json[colon] !== ':') return null;
      const valueEnd = endOfValue(json, skipSpace(json, colon + 1));
      if (valueEnd < 0) return null;
      if (!Object.hasOwn(set, key)) kept.push(json.slice(i, valueEnd));
      i = skipSpace(json, valueEnd);
      if (json[i] === '}') {
        i++;
        break;
      }
      if (json[i] !== ',') return null;
      i = skipSpace(json, i + 1);
    }
  }
  if (skipSpace(json, i) !== json.length) return null;
  for (const key in set) {
    const value = JSON.stringify(set[key]);
    if (value !== undefined) kept.push(`${JSON.stringify(key)}:${value}`);
  }
  return `{${kept.join(',')}}`;
}

/** JSON's whitespace: space, tab, line feed, carriage return. */
function skipSpace(json: string, i: number): number {
  for (;;) {
    const c = json.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return i;
    i++;
  }
}

/** The index after the string opening at `start`, or -1. */
function endOfString(json: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = json.indexOf('"', from);
    if (quote < 0) return -1;
    let backslashes = 0;
    while (json.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

/** The index after the value starting at `start`, or -1; nested values are skipped by their brackets alone. */
function endOfValue(json: string, start: number): number {
  const first = json.charCodeAt(start);
  if (first === 0x22) return endOfString(json, start);
  if (first === 0x7b || first === 0x5b) {
    let depth = 0;
    for (let i = start; i < json.length; i++) {
      const c = json.charCodeAt(i);
      if (c === 0x22) {
        const end = endOfString(json, i);
        if (end < 0) return -1;
        i = end - 1;
      } else if (c === 0x7b || c === 0x5b) depth++;
      else if ((c === 0x7d || c === 0x5d) && --depth === 0) return i + 1;
    }
    return -1;
  }
  // A number, true, false or null: up to what may follow a value.
  let i = start;
  for (; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x2c || c === 0x7d || c === 0x5d || c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) break;
  }
  return i > start ? i : -1;
}
