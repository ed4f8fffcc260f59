import { maskSecretInEvents, redact, SecretScan } from './provider';

const KEY = 'sk-proj-Abc123XyZ456def789';
const scan = SecretScan.of(KEY)!;
const text = (pieces: readonly Buffer[]) => Buffer.concat(pieces).toString();

describe('maskSecretInEvents', () => {
  const event = `data: {"error":{"message":"Incorrect API key provided: ${KEY}"}}\n\n`;

  it('masks a key split anywhere across two or three pieces (held bytes and the rest of an event)', () => {
    const missed: string[] = [];
    const start = event.indexOf(KEY);
    for (let a = start - 2; a <= start + KEY.length + 1; a++) {
      for (const b of [a + 1, a + 3, start + KEY.length - 1, event.length]) {
        if (b <= a || b > event.length) continue;
        const pieces = [event.slice(0, a), event.slice(a, b), event.slice(b)].filter(Boolean).map((p) => Buffer.from(p));
        const out = text(maskSecretInEvents(pieces, scan));
        if (out.includes(KEY.slice(8)) || !out.includes('sk-...f789')) missed.push(`${a}/${b}: ${out}`);
      }
    }
    expect(missed).toEqual([]);
  });

  it('passes pieces without the key on as they are, not joined or copied', () => {
    const held = Buffer.from(`data: {"choices":[{"delta":{"content":"${'x'.repeat(70_000)}`);
    const rest = Buffer.from(`${KEY.slice(0, 10)} and ${KEY.slice(10)}"}}]}\n\n`);
    const pieces = [held, rest];
    expect(maskSecretInEvents(pieces, scan)).toBe(pieces);
    // A piece shorter than the key between two others: the key across all three is found.
    const three = [Buffer.from(`data: "${KEY.slice(0, 5)}`), Buffer.from(KEY.slice(5, 9)), Buffer.from(`${KEY.slice(9)}"\n\n`)];
    expect(text(maskSecretInEvents(three, scan))).toBe('data: "sk-...f789"\n\n');
  });
});

describe('redact', () => {
  it('masks a key as OpenAI does, and wholly where the mask would put it back together', () => {
    expect(redact(`key ${KEY}.`, KEY)).toBe('key sk-...f789.');
    // First four characters equal to the last four: `abc...` + the key's tail would spell the key again.
    const looped = 'abcd1234567890ef1234567890abcd';
    const out = redact(`key: ${looped}${looped.slice(4)}`, looped);
    expect(out).not.toContain(looped);
    expect(out).toBe(`key: ***${looped.slice(4)}`);
  });

  it('masks a key of 8 characters or more wholly when it is short (under 20), and leaves a shorter one', () => {
    expect(redact('key abcd1234 refused', 'abcd1234')).toBe('key *** refused');
    expect(redact('key sk-abcd12345 refused', 'sk-abcd12345')).toBe('key *** refused');
    expect(redact('key abc1234 refused', 'abc1234')).toBe('key abc1234 refused');
  });
});
