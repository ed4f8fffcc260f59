import { main } from './main';

it('examples/nestjs-429-fallback: the business endpoint is served by Azure after 429, the route by OpenAI', async () => {
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  const { summary, routeTarget } = await main({}, () => undefined);
  expect(summary).toBe('Hello from azure-openai');
  expect(routeTarget).toBe('targets[0]');
  const events = log.mock.calls.map(([line]) => JSON.parse(String(line)) as { fallback: boolean });
  expect(events.map((e) => e.fallback)).toEqual([true, false]);
  log.mockRestore();
});
