/**
 * The viewer page in headless Chromium, for what its user reads and does that viewer.test.ts leaves unproved (a
 * mutation review of packages/core/src/logs/viewer-page.ts): how a row and the drawer show each value, the token link
 * and the sign-in form, what "Failed with" and a link's times mean, the drawer's slow and failed answers, "Load more"
 * and Back, and live mode while a trace id is being selected. Each test has its own mount and store, so any one of them
 * runs alone (`-t`).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { chromium, type Browser, type Page, type Route } from 'playwright-core';
import { MemoryLogStore, type LogEvent, type LogStore } from '@switchyard/core';
import { logsMiddleware } from '@switchyard/express';
import { listen, type RunningApp } from '../../e2e/src/support/adapters';
import { rowCount } from '../../e2e/src/support/viewer';
import { until } from '../../e2e/src/support/fixture';

jest.setTimeout(60_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// A token with characters a link must percent-encode (a space, &, +, %, #, /).
const TOKEN = 'logs token & more/+%41#0123';
// The page is reached untyped: the project's TypeScript has no DOM types (a function run in the page sees its globalThis).
type Dom = any;

const T = Date.UTC(2026, 2, 10, 9, 30, 15, 250);
function event(trace: string, over: Partial<LogEvent> = {}): LogEvent {
  return {
    traceId: trace, requestId: `req-${trace}`, configId: null, startedAt: T, durationMs: 12, status: 200, stream: false, fallback: false, model: 'gpt-4o',
    servedBy: { target: 'targets[0]', provider: 'openai', model: 'gpt-4o' },
    attempts: [{ target: 'targets[0]', provider: 'openai', model: 'gpt-4o', status: 200, durationMs: 10 }],
    usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }, costUsd: 0.0001,
    ...over,
  };
}

// A fallback after a 429, served by a virtual key, streamed, a big usage that cost nothing, a second exactly.
const SERVED = event('fmt-1', {
  startedAt: T + 4, durationMs: 1000, stream: true, fallback: true,
  servedBy: { target: 'targets[1]', provider: 'azure-openai', virtualKey: 'azure-prod', model: 'gpt4o-prod' },
  attempts: [
    { target: 'targets[0].targets[1]', provider: 'openai', virtualKey: 'openai-prod', model: 'gpt-4o', status: 429, durationMs: 1234, upstreamError: { code: 'rate_limit_exceeded', message: 'Slow down' } },
    { target: 'targets[1]', provider: 'azure-openai', virtualKey: 'azure-prod', model: 'gpt4o-prod', status: 200, durationMs: 1000 },
  ],
  usage: { prompt_tokens: 1_000_000, completion_tokens: 280_000, total_tokens: 1_280_000 }, costUsd: 0,
});
// Every target failed, each retried once: the last one's 500 is what the client got.
const FAILED = event('fail-500', {
  startedAt: T + 3, status: 500, fallback: true,
  servedBy: { target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod' },
  attempts: [
    { target: 'targets[0]', provider: 'openai', model: 'gpt-4o', status: 500, durationMs: 5, error: { code: 'upstream_error', message: 'boom' } },
    // Retried: one more attempt of the same target, no earlier target.
    { target: 'targets[0]', provider: 'openai', model: 'gpt-4o', status: 500, durationMs: 5, error: { code: 'upstream_error', message: 'boom' } },
    { target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod', status: 500, durationMs: 6, error: { code: 'upstream_error', message: 'boom again' } },
    { target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod', status: 500, durationMs: 6, error: { code: 'upstream_error', message: 'boom too' } },
  ],
  usage: null, costUsd: null,
});
// The client went away first.
const CLOSED = event('closed-499', { startedAt: T + 2, status: 499, stream: true, usage: null, costUsd: null });
// The first target has no deployment of the model: skipped, no status.
const SKIPPED = event('skipped-1', {
  startedAt: T + 1, fallback: true,
  servedBy: { target: 'targets[1]', provider: 'openai', model: 'gpt-4o' },
  attempts: [
    { target: 'targets[0]', provider: 'azure-openai', model: 'gpt-4o', status: null, durationMs: 0, error: { code: 'model_not_deployed', message: 'none' } },
    { target: 'targets[1]', provider: 'openai', model: 'gpt-4o', status: 200, durationMs: 9 },
  ],
});
// Listed, but its record is no longer kept when it is opened.
const GONE = event('gone-1', { startedAt: T });

describe('viewer page: what its user sees and does', () => {
  let browser: Browser;
  let app: RunningApp;
  const shapes = new MemoryLogStore();
  const many = new MemoryLogStore();
  const live = new MemoryLogStore();
  const slow: Record<string, number> = {};
  const answered: string[] = [];
  // A's records, some slow to read, one gone.
  const store: LogStore = {
    write: (e) => shapes.write(e),
    query: (q) => shapes.query(q),
    summarize: (q) => shapes.summarize(q),
    get: async (id) => {
      await new Promise((r) => setTimeout(r, slow[id] ?? 0));
      answered.push(id);
      return id === GONE.requestId ? null : shapes.get(id);
    },
  };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM}: install Debian's chromium or set CHROMIUM_PATH.`);
    for (const e of [GONE, SKIPPED, CLOSED, FAILED, SERVED]) shapes.write(e);
    for (let i = 0; i < 60; i++) many.write(event(`many-${i}`, { startedAt: T - 1000 * i }));
    live.write(event('live-1'));
    const host = express();
    host.use('/logs', logsMiddleware({ store, allowUnauthenticated: true, viewer: true }));
    host.use('/tok/logs', logsMiddleware({ store, token: TOKEN, viewer: true }));
    host.use('/many/logs', logsMiddleware({ store: many, allowUnauthenticated: true, viewer: true }));
    host.use('/live/logs', logsMiddleware({ store: live, allowUnauthenticated: true, viewer: true }));
    app = await listen(createServer(host));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  /** A page in a UTC, en-US browser (the figures' separators and the times as shown), with its errors collected. */
  async function newPage(options: { timezoneId?: string; colorScheme?: 'light' | 'dark' } = {}) {
    const context = await browser.newContext({ viewport: { width: 1600, height: 800 }, locale: 'en-US', timezoneId: options.timezoneId ?? 'UTC', colorScheme: options.colorScheme ?? 'light', reducedMotion: 'reduce' });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    return { page, errors, close: () => context.close() };
  }

  it('works mounted at a path without its trailing slash', async () => {
    const { page, errors, close } = await newPage();
    try {
      await page.goto(`${app.url}/logs?traceId=fmt-1`);
      await rowCount(page, 1);
      expect(await page.locator('#error').textContent()).toBe('');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('reads a percent-encoded token from the link, says why a token is asked for, and hides the sign-in once it works', async () => {
    const { page, errors, close } = await newPage();
    try {
      // After another fragment parameter, percent-encoded as a link must carry it.
      await page.goto(`${app.url}/tok/logs/#view=1&token=${encodeURIComponent(TOKEN)}`);
      await rowCount(page, 5);
      expect(new URL(page.url()).hash).toBe('');
      expect(await page.locator('#login.show').count()).toBe(0);

      // A token the endpoint refuses: said as refused, and not kept (a reload asks for one, as with none).
      await page.goto('about:blank');
      await page.goto(`${app.url}/tok/logs/#token=not-the-token-0123456789`);
      await page.locator('#login.show').waitFor();
      expect(await page.locator('#error').textContent()).toBe('That token was not accepted: enter the logs token.');
      await page.reload();
      await page.locator('#login.show').waitFor();
      await page.locator('#error', { hasText: 'A token is needed to read the logs.' }).waitFor();
      // Typed into a box that does not show it.
      expect(await page.getAttribute('#token', 'type')).toBe('password');
      expect((await page.evaluate(() => (globalThis as Dom).document.activeElement.id))).toBe('token');
      await page.fill('#token', TOKEN);
      await page.click('#login button');
      await rowCount(page, 5);
      expect(await page.locator('#login.show').count()).toBe(0);
      expect(await page.locator('#error').textContent()).toBe('');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it("works where the browser refuses the site's storage (blocked site data): lists, and signs in with a token for the page", async () => {
    // A profile that blocks site data, as Chrome's "Sites can't save data on your device": reading storage throws.
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-viewer-profile-'));
    mkdirSync(join(dir, 'Default'));
    writeFileSync(join(dir, 'Default', 'Preferences'), JSON.stringify({ profile: { default_content_setting_values: { cookies: 2 } } }));
    const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(`${app.url}/logs/`);
      await rowCount(page, 5);
      await page.goto(`${app.url}/tok/logs/`);
      await page.locator('#login.show').waitFor();
      await page.fill('#token', TOKEN);
      await page.click('#login button');
      await rowCount(page, 5);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shows each value of a row as it is: counts with separators, a free answer as $0, seconds, a stream, a failure, a client gone', async () => {
    const { page, errors, close } = await newPage();
    try {
      await page.goto(`${app.url}/logs/`);
      await rowCount(page, 5);
      // Every match is on screen: no "Load more".
      expect(await page.locator('#more').isVisible()).toBe(false);
      const cells = (trace: string) => page.locator('tr.row', { hasText: trace }).locator('td');
      const served = cells('fmt-1');
      expect(await served.nth(0).getAttribute('title')).toBe(new Date(SERVED.startedAt).toISOString());
      expect(await served.nth(2).textContent()).toBe('gpt-4o · stream');
      expect(await served.nth(5).textContent()).toBe('1,280,000');
      expect(await served.nth(5).getAttribute('title')).toBe('1,000,000 prompt + 280,000 completion');
      expect(await served.nth(6).textContent()).toBe('$0');
      expect(await served.nth(7).textContent()).toBe('1.00 s');

      // Every target failed: the chip is a server error's, the last target's answer is an error (not "served"), the
      // marker says who answered, and nothing "broke" after it started.
      const failed = cells('fail-500');
      expect(await failed.nth(4).locator('.chip').getAttribute('class')).toBe('chip s5');
      expect(await failed.nth(4).locator('.broke').count()).toBe(0);
      expect(await failed.nth(3).textContent()).toMatch(/^error from Azure OpenAI · gpt4o-prod/);
      expect(await failed.nth(3).locator('.badge-fallback').getAttribute('title')).toBe('Answered by targets[1] after 1 earlier target(s) tried or skipped');
      // A client that went away is no client error of the caller's making: grey, as a status nobody answered.
      expect(await cells('closed-499').nth(4).locator('.chip').getAttribute('class')).toBe('chip s0');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it("opens a request to every fact and attempt as logged: the default config, the stream, who served it with which key, the tokens' split", async () => {
    const { page, errors, close } = await newPage();
    try {
      await page.goto(`${app.url}/logs/`);
      await page.locator('tr.row', { hasText: 'fmt-1' }).click();
      await page.locator('#detail.open #attempts tbody tr').nth(1).waitFor();
      const facts = await page.evaluate(() => {
        const d = (globalThis as Dom).document;
        const dts = Array.from(d.querySelectorAll('#detail-body dt') as ArrayLike<{ textContent: string }>, (n) => n.textContent);
        const dds = Array.from(d.querySelectorAll('#detail-body dd') as ArrayLike<{ textContent: string }>, (n) => n.textContent);
        return Object.fromEntries(dts.map((k, i) => [k, dds[i]]));
      });
      expect(facts).toEqual({
        'Request id': 'req-fmt-1',
        'Trace id': 'fmt-1',
        // A UTC browser: the time once, as logged.
        Started: new Date(SERVED.startedAt).toISOString(),
        Duration: '1.00 s',
        Status: '200',
        Config: '(default)',
        Model: 'gpt-4o (stream)',
        'Served by': 'Azure OpenAI · gpt4o-prod · targets[1] · azure-prod',
        Fallback: '↪ fell back',
        Tokens: '1,280,000 (1,000,000 prompt + 280,000 completion)',
        Cost: '$0',
      });
      expect(await page.locator('#detail-body h3').first().textContent()).toBe('Attempts (2)');
      const first = page.locator('#attempts tbody tr').first().locator('td');
      expect(await first.nth(1).textContent()).toBe('targets[0].targets[1]');
      expect(await first.nth(2).textContent()).toBe('OpenAIopenai-prod');
      expect(await first.nth(4).textContent()).toBe('429');
      expect(await first.nth(5).textContent()).toBe('1.23 s');
      expect(JSON.parse((await page.locator('#detail-body pre').textContent())!)).toEqual(SERVED);
      await page.keyboard.press('Escape');

      // A target skipped for want of a deployment got no status: a dash, not an empty chip.
      await page.locator('tr.row', { hasText: 'skipped-1' }).click();
      await page.locator('#detail.open #detail-body[data-request-id="req-skipped-1"]').waitFor();
      expect(await page.locator('#attempts tbody tr').first().locator('.chip').textContent()).toBe('—');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it("shows the drawer of the request last opened, not a slower answer's, none after it was closed, and says why one could not be read", async () => {
    const { page, errors, close } = await newPage();
    const finished = (id: string) => until(() => answered.includes(id), 5000);
    try {
      await page.goto(`${app.url}/logs/`);
      await rowCount(page, 5);
      // Opened, then another row before it came: the other's details stay.
      slow[SERVED.requestId] = 800;
      answered.length = 0;
      await page.locator('tr.row', { hasText: 'fmt-1' }).click();
      await page.locator('tr.row', { hasText: 'fail-500' }).click();
      await page.locator('#detail.open #detail-body[data-request-id="req-fail-500"]').waitFor();
      await finished(SERVED.requestId);
      await page.waitForTimeout(300); // its answer reaches the page
      expect(await page.getAttribute('#detail-body', 'data-request-id')).toBe('req-fail-500');
      expect(await page.locator('tr.row[aria-current=true]').textContent()).toContain('fail-500');
      await page.keyboard.press('Escape');

      // Opened, then closed before it came: it does not open again.
      answered.length = 0;
      await page.locator('tr.row', { hasText: 'fmt-1' }).click();
      await page.locator('#detail.open').waitFor();
      await page.keyboard.press('Escape');
      await finished(SERVED.requestId);
      await page.waitForTimeout(300);
      expect(await page.locator('#detail.open').count()).toBe(0);
      delete slow[SERVED.requestId];

      // A record no longer kept: the drawer says so, with the endpoint's reason.
      await page.locator('tr.row', { hasText: 'gone-1' }).click();
      await page.locator('#detail-body', { hasText: 'Could not load req-gone-1: ' }).waitFor();
      expect(await page.locator('#detail-body').textContent()).toBe('Could not load req-gone-1: No request "req-gone-1" in the log store. (requestId)');
      await page.keyboard.press('Escape');

      // A sign-in page (a 200) where the record should be: a failure, said as such.
      await page.route('**/logs/api/requests/req-closed-499', (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<html>Sign in</html>' }));
      await page.locator('tr.row', { hasText: 'closed-499' }).click();
      await page.locator('#detail-body', { hasText: 'Could not load req-closed-499: ' }).waitFor();
      expect(await page.locator('#detail-body').textContent()).toBe('Could not load req-closed-499: The server answered with something other than the logs API (a sign-in page?).');
      await page.unrouteAll({ behavior: 'ignoreErrors' });
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('reads "Failed with" a class in either case, and a link\'s times and refusals as the API does; Clear clears a bad link', async () => {
    const { page, errors, close } = await newPage();
    try {
      await page.goto(`${app.url}/logs/`);
      await rowCount(page, 5);
      // The class the box suggests, and the same in capitals (the API takes either): a status class, not a code.
      for (const typed of ['5xx', '5XX']) {
        await page.fill('input[name=failedStatus]', typed);
        await page.press('input[name=failedStatus]', 'Enter');
        await page.waitForURL((url) => url.search === `?failedStatus=${typed}`);
        await rowCount(page, 1);
        expect(await page.locator('tr.row').textContent()).toContain('fail-500');
        expect(await page.getAttribute('input[name=failedStatus]', 'aria-invalid')).toBeNull();
        expect(await page.locator('#error').textContent()).toBe('');
      }
      // The suggestions are the box's own.
      expect(await page.locator('input[name=failedStatus]').evaluate((input) => (input as Dom).list?.id)).toBe('failed-errors');

      // A link in epoch ms: the box shows that minute.
      await page.goto(`${app.url}/logs/?from=${T + 2}`);
      await rowCount(page, 3);
      expect(await page.inputValue('input[name=from]')).toBe('2026-03-10T09:30');

      // A filter the API refuses: its message, and the parameter it names.
      await page.goto(`${app.url}/logs/?status=42`);
      await page.locator('#error.show').waitFor();
      expect(await page.locator('#error').textContent()).toBe('status must be an HTTP status (100-599) or a class such as 5xx. (status)');
      // Nothing found: the message spans the table, not the time column.
      const spans = await page.evaluate(() => {
        const d = (globalThis as Dom).document;
        return d.querySelector('td.empty').getBoundingClientRect().width / d.querySelector('#requests').getBoundingClientRect().width;
      });
      expect(spans).toBeGreaterThan(0.9);

      // A link whose time is none: refused; Clear then searches everything, not the bad time again.
      await page.goto(`${app.url}/logs/?from=garbage`);
      await page.locator('#error.show').waitFor();
      await page.click('#clear');
      await rowCount(page, 5);
      expect(new URL(page.url()).search).toBe('');
      expect(await page.locator('#error').textContent()).toBe('');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it("reads a link's time without an offset as UTC, as the API does, and shows it in the browser's zone", async () => {
    const { page, errors, close } = await newPage({ timezoneId: 'Europe/Berlin' });
    try {
      await page.goto(`${app.url}/logs/?from=2026-03-10T09:30:15.252`);
      await rowCount(page, 3);
      expect(await page.inputValue('input[name=from]')).toBe('2026-03-10T10:30');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('opens a row with Space too, and Escape in a filter closes the drawer and leaves the typing where it is', async () => {
    const { page, errors, close } = await newPage();
    try {
      await page.goto(`${app.url}/logs/`);
      await rowCount(page, 5);
      await page.locator('tr.row', { hasText: 'fmt-1' }).focus();
      await page.keyboard.press(' ');
      await page.locator('#detail.open #detail-body[data-request-id="req-fmt-1"]').waitFor();
      await page.focus('input[name=model]');
      await page.keyboard.type('gpt');
      await page.keyboard.press('Escape');
      await page.locator('#detail:not(.open)').waitFor({ state: 'attached' });
      expect(await page.evaluate(() => (globalThis as Dom).document.activeElement.name)).toBe('model');
      await page.keyboard.type('-4o');
      expect(await page.inputValue('input[name=model]')).toBe('gpt-4o');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('while a new search is on its way: says it is loading, offers no Totals of the last one, and Load more adds none of its rows', async () => {
    const { page, errors, close } = await newPage();
    let hold = false;
    const held: Route[] = [];
    let pages = 0;
    page.on('request', (r) => void (r.url().includes('/many/logs/api/requests?') && r.url().includes('cursor=') && pages++));
    await page.route('**/many/logs/api/requests?**', (route) => (hold ? void held.push(route) : route.continue()));
    try {
      await page.goto(`${app.url}/many/logs/`);
      await rowCount(page, 50);
      expect(await page.locator('#totals').isVisible()).toBe(true);
      // A search that matches nothing, on its way: the last search's Totals go, and its Load more asks nothing.
      hold = true;
      await page.fill('input[name=model]', 'no-such-model');
      await page.click('button.primary');
      await until(() => held.length === 1);
      expect(await page.locator('#totals').isVisible()).toBe(false);
      await page.click('#more');
      await page.waitForTimeout(200);
      expect(pages).toBe(0);
      hold = false;
      await held.shift()!.continue();
      await page.locator('td.empty', { hasText: 'No requests match these filters.' }).waitFor();
      expect(await page.locator('tr.row').count()).toBe(0);

      // From an empty table, the next search on its way says it is loading, not the last one's "no match".
      hold = true;
      await page.fill('input[name=model]', 'another-model');
      await page.click('button.primary');
      await until(() => held.length === 1);
      await page.locator('td.empty', { hasText: 'Loading…' }).waitFor({ timeout: 5000 });
      hold = false;
      await held.shift()!.continue();
      await page.locator('td.empty', { hasText: 'No requests match these filters.' }).waitFor();
      expect(errors).toEqual([]);
    } finally {
      await page.unrouteAll({ behavior: 'ignoreErrors' });
      await close();
    }
  });

  it("drops what a search asked for once a newer search is on screen: its slower rows, and its Totals", async () => {
    const { page, errors, close } = await newPage();
    let hold = false;
    const held: Route[] = [];
    await page.route('**/many/logs/api/**', (route) => (hold ? void held.push(route) : route.continue()));
    try {
      await page.goto(`${app.url}/many/logs/`);
      await rowCount(page, 50);
      // A search whose rows are slow, then another: the other's rows stay when the first one's come.
      hold = true;
      await page.fill('input[name=traceId]', 'many-1');
      await page.click('button.primary');
      await until(() => held.length === 1);
      hold = false;
      await page.fill('input[name=traceId]', 'many-2');
      await page.click('button.primary');
      await rowCount(page, 1); // the 50 rows listed before hold many-20 to many-29 too
      const late = page.waitForEvent('requestfinished', (r) => r.url().includes('traceId=many-1'));
      await held.shift()!.continue();
      await late;
      await page.waitForTimeout(300);
      expect(await page.locator('tr.row').allTextContents()).toEqual([expect.stringContaining('many-2')]);

      // Totals asked for one search, then for another: the first one's, arriving last, do not replace the second's.
      await page.click('#clear');
      await rowCount(page, 50);
      hold = true;
      await page.click('#totals');
      await until(() => held.length === 1);
      await page.fill('input[name=minTokens]', '1');
      hold = false;
      await page.click('button.primary');
      await page.waitForURL(/minTokens=1/);
      await page.locator('#summary', { hasText: 'in the 50 loaded' }).waitFor();
      await page.click('#totals');
      await page.locator('#summary', { hasText: /^60 requests · 0 fell back/ }).waitFor();
      const stale = page.waitForEvent('requestfinished', (r) => r.url().endsWith('/api/summary'));
      await held.shift()!.continue();
      await stale;
      await page.waitForTimeout(300);
      expect(await page.locator('#summary').textContent()).toMatch(/^60 requests · 0 fell back/);
      expect(errors).toEqual([]);
    } finally {
      await page.unrouteAll({ behavior: 'ignoreErrors' });
      await close();
    }
  });

  it('keeps the pages loaded with Load more when Back closes the drawer opened from them', async () => {
    const { page, errors, close } = await newPage();
    let lists = 0;
    page.on('request', (r) => void (r.url().includes('/many/logs/api/requests?') && lists++));
    try {
      await page.goto(`${app.url}/many/logs/`);
      await rowCount(page, 50);
      await page.click('#more');
      await rowCount(page, 60);
      const asked = lists;
      await page.locator('tr.row', { hasText: 'many-55' }).click();
      await page.locator('#detail.open #detail-body[data-request-id="req-many-55"]').waitFor();
      await page.goBack();
      await page.locator('#detail:not(.open)').waitFor({ state: 'attached' });
      await page.waitForTimeout(300);
      expect(lists).toBe(asked);
      await rowCount(page, 60);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('asks nothing in live mode while a trace id is selected (a refresh would drop the selection), and again once it is not', async () => {
    const { page, errors, close } = await newPage();
    let lists = 0;
    page.on('request', (r) => void (r.url().includes('/live/logs/api/requests?') && lists++));
    try {
      await page.clock.install();
      await page.goto(`${app.url}/live/logs/`);
      await rowCount(page, 1);
      await page.check('#live');
      const trace = page.locator('tr.row .trace').first();
      await trace.evaluate((node) => {
        const range = (globalThis as Dom).document.createRange();
        range.selectNodeContents(node);
        (globalThis as Dom).getSelection().addRange(range);
      });
      const asked = lists;
      live.write(event('live-2', { startedAt: T + 1000 }));
      await page.clock.runFor(10_000);
      await page.waitForTimeout(200);
      expect(lists).toBe(asked);
      expect(await page.evaluate(() => String((globalThis as Dom).getSelection()))).toBe('live-1');
      await rowCount(page, 1);
      // Selection gone: the next tick brings the new request.
      await page.evaluate(() => (globalThis as Dom).getSelection().removeAllRanges());
      await page.clock.runFor(5_000);
      await rowCount(page, 2);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('switches the theme from the system one, and says an unreachable server and an alert as such', async () => {
    const { page, errors, close } = await newPage({ colorScheme: 'light' });
    try {
      await page.goto(`${app.url}/logs/`);
      await rowCount(page, 5);
      const look = () => page.evaluate(() => [(globalThis as Dom).document.documentElement.dataset.theme, (globalThis as Dom).getComputedStyle((globalThis as Dom).document.body).backgroundColor]);
      await page.click('#theme');
      expect(await look()).toEqual(['dark', 'rgb(14, 16, 19)']);
      await page.click('#theme');
      expect(await look()).toEqual(['light', 'rgb(247, 248, 250)']);

      await page.route('**/logs/api/requests?**', (route) => route.abort('connectionrefused'));
      await page.fill('input[name=traceId]', 'fmt-1');
      await page.press('input[name=traceId]', 'Enter');
      await page.locator('td.empty', { hasText: 'Could not load the logs: Could not reach the server.' }).waitFor();
      expect(await page.getAttribute('#error', 'role')).toBe('alert');
      expect(await page.locator('#error').textContent()).toBe('Could not reach the server.');
      await page.unrouteAll({ behavior: 'ignoreErrors' });
      expect(errors.filter((e) => !/Failed to load resource/.test(e))).toEqual([]);
    } finally {
      await close();
    }
  });
});
