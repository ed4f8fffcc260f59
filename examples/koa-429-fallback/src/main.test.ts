import { main } from './main';

// Variables left empty (a copied .env) count as unset: the example runs on the fakes, it does not refuse to start.
const EMPTY_ENV = { OPENAI_API_KEY: '', AZURE_OPENAI_API_KEY: '', AZURE_OPENAI_DEPLOYMENT: '', AZURE_OPENAI_API_VERSION: '', DEMO_MODEL: '' };

it('examples/koa-429-fallback: on the fakes, the rate-limited request is served by Azure', async () => {
  const { targets, logs } = await main(EMPTY_ENV, () => undefined);
  expect(targets).toEqual(['targets[1]', 'targets[0]']);
  expect(logs.map((e) => [e.fallback, e.stream])).toEqual([[true, false], [false, true]]);
});
