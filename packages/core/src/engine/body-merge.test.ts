import { mergeMembers } from './body-merge';

describe('mergeMembers', () => {
  it('keeps every member it does not set byte for byte, drops the ones it sets (duplicates too), appends them', () => {
    const json = ' {"model" : "gpt-4o","seed":9007199254740993,\n"t":1e400,"z":-0,"s":"a\\"b\\\\","n":[{"x":"}]"},[]],"model":"dup","o":{}} ';
    expect(mergeMembers(json, { model: 'gpt4o-prod', temperature: 0.2 })).toBe(
      '{"seed":9007199254740993,"t":1e400,"z":-0,"s":"a\\"b\\\\","n":[{"x":"}]"},[]],"o":{},"model":"gpt4o-prod","temperature":0.2}',
    );
  });

  it('reads keys as JSON does (escapes), drops an undefined value as JSON.stringify does, and merges into {}', () => {
    expect(mergeMembers('{"\\u006dodel":"a","user":"u"}', { model: 'b', user: undefined })).toBe('{"model":"b"}');
    expect(mergeMembers('{ }', { a: 1 })).toBe('{"a":1}');
    expect(mergeMembers('{"a":true,"b":null,"c":-1.5E+3}', {})).toBe('{"a":true,"b":null,"c":-1.5E+3}');
  });

  it('says it cannot (null) for what is not one JSON object', () => {
    for (const json of ['[]', '{"a":1', '{"a" 1}', '{"a":1}x', '{a:1}', '{"a":"x}', '{"a":}', '{"a" "b":1}']) expect([json, mergeMembers(json, { b: 2 })]).toEqual([json, null]);
  });
  it('takes tabs and carriage returns as JSON whitespace, and a member named like an Object method as any other', () => {
    expect(mergeMembers('{\t"seed":9007199254740993,\r\n\t"model":"a"\r\n}', { model: 'b' })).toBe('{"seed":9007199254740993,"model":"b"}');
    expect(mergeMembers('{"constructor":1,"toString":"x","model":"a"}', { model: 'b' })).toBe('{"constructor":1,"toString":"x","model":"b"}');
  });
  it('ends a number or literal at the whitespace after it: the value keeps its bytes, the space between members goes', () => {
    expect(mergeMembers('{"seed":9007199254740993 ,"n":null\t,"t":true\r\n}', { model: 'b' })).toBe('{"seed":9007199254740993,"n":null,"t":true,"model":"b"}');
  });
});
