import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { retryAfterMs, retryDelayMs } from './retry-delay';

const headers = (h: Record<string, string>) => (name: string) => h[name];

describe('retry wait rule', () => {
  it('prefers retry-after-ms, then x-ms-retry-after-ms, then retry-after (seconds or HTTP date)', () => {
    expect(retryAfterMs(headers({ 'retry-after-ms': '250', 'retry-after': '9' }))).toBe(250);
    expect(retryAfterMs(headers({ 'x-ms-retry-after-ms': '40' }))).toBe(40);
    expect(retryAfterMs(headers({ 'retry-after': '2' }))).toBe(2000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs(headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:03 GMT' }), now)).toBe(3000);
    expect(retryAfterMs(headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterMs(headers({}))).toBeUndefined();
    // Azure's token-rate 429 at times says only this (seconds); OpenAI's dashless x-ratelimit-reset-* is no hint.
    expect(retryAfterMs(headers({ 'x-rate-limit-reset-tokens': '55' }))).toBe(55_000);
    expect(retryAfterMs(headers({ 'retry-after': '2', 'x-rate-limit-reset-tokens': '55' }))).toBe(2000);
    expect(retryAfterMs(headers({ 'x-ratelimit-reset-tokens': '6m0s', 'x-ratelimit-reset-requests': '1s' }))).toBeUndefined();
    expect(retryAfterMs(headers({ 'x-rate-limit-reset-tokens': '6m0s' }))).toBeUndefined();
  });

  it('reads only digits and HTTP dates: what Number() or Date.parse would also take is no hint (then backoff)', () => {
    const now = Date.parse('1994-11-06T08:49:30Z');
    // The obsolete RFC 850 and asctime forms RFC 9110 asks recipients to accept.
    expect(retryAfterMs(headers({ 'retry-after': 'Sunday, 06-Nov-94 08:49:37 GMT' }), now)).toBe(7000);
    expect(retryAfterMs(headers({ 'retry-after': 'Sun Nov  6 08:49:37 1994' }), now)).toBe(7000); // GMT, whatever the TZ
    expect(retryAfterMs(headers({ 'retry-after': '1.5' }))).toBe(1500);
    for (const nonsense of ['1, 2', 'x 1', '1/2', '1,5', '0x10', '1e3', '-1', 'Infinity']) {
      expect([nonsense, retryAfterMs(headers({ 'retry-after': nonsense }))]).toEqual([nonsense, undefined]);
    }
    expect(retryAfterMs(headers({ 'retry-after-ms': '0x10', 'retry-after': '2' }))).toBe(2000);
  });

  it('reads an empty header as no hint, not as "retry at once"', () => {
    expect(retryAfterMs(headers({ 'retry-after-ms': '', 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMs(headers({ 'x-ms-retry-after-ms': ' ' }))).toBeUndefined();
    expect(retryAfterMs(headers({ 'retry-after': '' }))).toBeUndefined();
  });

  it('backs off exponentially with jitter, capped', () => {
    const max = { capMs: 8000, random: () => 0 };
    const min = { capMs: 8000, random: () => 1 };
    expect([0, 1, 2, 3, 4, 5].map((n) => retryDelayMs(n, max))).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
    expect([0, 1, 2].map((n) => retryDelayMs(n, min))).toEqual([375, 750, 1500]);
  });

  it('follows the upstream hint within the cap, and gives up (null) beyond it', () => {
    expect(retryDelayMs(3, { capMs: 8000, header: headers({ 'retry-after': '1' }) })).toBe(1000);
    expect(retryDelayMs(0, { capMs: 8000, header: headers({ 'retry-after': '30' }) })).toBeNull();
    // A wait of exactly the cap is still waited.
    expect(retryDelayMs(0, { capMs: 8000, header: headers({ 'retry-after': '8' }) })).toBe(8000);
  });
  it('reads a past HTTP date as "retry now" (0), never a negative wait', () => {
    const now = Date.parse('2026-01-01T00:00:10Z');
    expect(retryAfterMs(headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:03 GMT' }), now)).toBe(0);
    expect(retryDelayMs(0, { capMs: 8000, header: headers({ 'retry-after': 'Thu, 01 Jan 1970 00:00:00 GMT' }) })).toBe(0);
  });

  it('reads an asctime date as GMT in a process whose time zone is not UTC', () => {
    // Date.parse reads a date that names no zone as local time: run the rule in a process on New York's time.
    const { outputText } = ts.transpileModule(readFileSync(join(__dirname, 'retry-delay.ts'), 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS } });
    const script = `const module = { exports: {} }; (function (exports) { ${outputText} })(module.exports);
      const h = { 'retry-after': 'Sun Nov  6 08:49:37 1994' };
      console.log(JSON.stringify([new Date(2020, 0, 1).getTimezoneOffset(), module.exports.retryAfterMs((n) => h[n], Date.parse('1994-11-06T08:49:30Z'))]));`;
    const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: 'America/New_York' }, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual([300, 7000]);
  });
});
