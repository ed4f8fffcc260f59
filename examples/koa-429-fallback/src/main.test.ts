import { main } from './main';

it('examples/koa-429-fallback: on the fakes, the rate-limited request is served by Azure', async () => {
  const { targets, logs } = await main({}, () => undefined);
  expect(targets).toEqual(['targets[1]', 'targets[0]']);
  expect(logs.map((e) => [e.fallback, e.stream])).toEqual([[true, false], [false, true]]);
});
