/**
 * The viewer in a real browser (Debian's chromium, driven by playwright-core): requests made with the official SDK,
 * some of which the fakes make fall back, are found by trace id, marked as fallbacks, and opened to their attempts.
 * Fails (does not skip) when chromium is missing: `pnpm test` installs it (packages/e2e/scripts/ensure-chromium.js).
 * `SWITCHYARD_SCREENSHOT=1` writes the README's screenshot to packages/logs/docs/viewer.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import express from 'express';
import { chromium, type Browser, type Page } from 'playwright-core';
import { MemoryLogStore, type LogEvent, type LogStore } from '@switchyard/core';
import { fallbackMiddleware, logsMiddleware } from '@switchyard/express';
import { SqliteLogStore } from '@switchyard/logs';
import { replies } from '@switchyard/testing';
import { listen, type RunningApp } from '../../e2e/src/support/adapters';
import { rowCount } from '../../e2e/src/support/viewer';
import { messages, sdk, seedOptions, startUpstreams, until, type Upstreams } from '../../e2e/src/support/fixture';

jest.setTimeout(60_000);

/** The focused element's id and request id (the project's TypeScript has no DOM types: the page is reached untyped). */
function focused(page: Page): Promise<{ id?: string; requestId?: string }> {
  type Focusable = { id: string; dataset: Record<string, string | undefined> };
  return page.evaluate(() => {
    const el = (globalThis as unknown as { document: { activeElement: Focusable | null } }).document.activeElement;
    return el ? { id: el.id, ...(el.dataset.requestId !== undefined && { requestId: el.dataset.requestId }) } : {};
  });
}

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'viewer-token-0123456789abcdef';
const XSS_TRACE = '<img src=x onerror="window.__xss=1">';

describe('viewer page in headless Chromium', () => {
  let up: Upstreams;
  let call: (trace: string, model?: string, headers?: Record<string, string>) => Promise<unknown>;
  let app: RunningApp;
  let store: SqliteLogStore;
  let dir: string;
  let browser: Browser;
  let page: Page;
  const logs: LogEvent[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is missing at ${CHROMIUM}: install Debian's chromium (apt-get install chromium; pnpm test does when it can) or set CHROMIUM_PATH.`);
    }
    dir = mkdtempSync(join(tmpdir(), 'switchyard-viewer-'));
    store = new SqliteLogStore({ path: join(dir, 'logs.db') });
    up = await startUpstreams();
    const host = express();
    host.use(
      fallbackMiddleware(
        seedOptions(up, logs, {
          logSinks: [store],
          configs: { 'fallback-429': { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } },
        }),
      ),
    );
    host.use('/switchyard/logs', logsMiddleware({ store, token: TOKEN, viewer: true }));
    app = await listen(createServer(host));

    // Traffic: OpenAI serves some, 429s send others to Azure, one fails everywhere, one streams.
    call = (trace: string, model = 'gpt-4o', headers: Record<string, string> = {}) =>
      sdk(app.url, { 'x-switchyard-trace-id': trace, ...headers }).chat.completions.create({ model, messages }).catch(() => undefined);
    await call('signup-7f3a');
    await call('search-19c2', 'gpt-4o-mini');
    up.openai.enqueue(replies.rateLimited());
    await call('checkout-42');
    up.openai.enqueue(replies.rateLimited());
    await call('invoice-0815', 'gpt-4o-mini', { 'x-switchyard-config': 'fallback-429' });
    up.openai.enqueue({ status: 503 });
    up.azure.enqueue({ status: 503 });
    await call('report-503');
    const stream = await sdk(app.url, { 'x-switchyard-trace-id': 'chat-stream-5' }).chat.completions.create({
      model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true },
    });
    for await (const chunk of stream) void chunk;
    await until(() => logs.length === 6);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1600, height: 760 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await up?.close();
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists the requests, finds one by trace id with its fallback marker, and opens its attempts', async () => {
    await page.goto(`${app.url}/switchyard/logs/#token=${TOKEN}`);
    await page.locator('tr.row').first().waitFor();
    expect(await page.locator('tr.row').count()).toBe(6);
    // The token left the address bar once read.
    expect(page.url()).not.toContain(TOKEN);
    expect(await page.locator('tr.row.fb .badge-fallback').count()).toBe(3); // checkout, invoice, and report-503 (503 from both)

    await page.fill('input[name=traceId]', 'checkout-42');
    await page.press('input[name=traceId]', 'Enter');
    await rowCount(page, 1);
    const row = page.locator('tr.row');
    expect(await row.textContent()).toContain('checkout-42');
    expect(await row.locator('.badge-fallback').textContent()).toContain('fallback');
    expect(page.url()).toContain('traceId=checkout-42');

    await row.click();
    await page.locator('#detail.open #attempts tbody tr').nth(1).waitFor();
    const attempts = await page.locator('#attempts tbody tr').allTextContents();
    expect(attempts).toHaveLength(2);
    // With what OpenAI said, and its request id (what OpenAI's support asks for).
    expect(attempts[0]).toMatch(/targets\[0\].*OpenAI.*gpt-4o.*429.*rate_limit_exceeded: Rate limit reached for requests.*request id req_fake_/);
    expect(attempts[1]).toMatch(/targets\[1\].*Azure OpenAI.*gpt4o-prod.*200/);
    expect(await page.locator('#detail').textContent()).toContain('$0.000075');
  });

  it('renders for the README screenshot', async () => {
    await page.click('#clear');
    await rowCount(page, 6);
    await page.locator('tr.row', { hasText: 'checkout-42' }).click();
    await page.locator('#detail.open #attempts tbody tr').nth(1).waitFor();
    await page.waitForTimeout(250); // the drawer's slide-in
    const target = process.env.SWITCHYARD_SCREENSHOT === '1' ? resolve(__dirname, '../docs/viewer.png') : join(dir, 'viewer.png');
    mkdirSync(resolve(target, '..'), { recursive: true });
    await page.screenshot({ path: target });
    expect(existsSync(target)).toBe(true);
  });

  it('filters by status class and fallback, and shows trace ids as text (no script runs)', async () => {
    await page.keyboard.press('Escape');
    await page.click('#clear');
    await page.selectOption('select[name=fallback]', 'true');
    await page.fill('input[name=status]', '5xx');
    await page.click('button.primary');
    await rowCount(page, 1);
    expect(await page.locator('tr.row').textContent()).toContain('report-503');
    // Who failed at Azure, whoever answered: only report-503 (checkout-42 and invoice-0815 failed at OpenAI alone).
    await page.click('#clear');
    await rowCount(page, 6);
    await page.selectOption('select[name=failedProvider]', 'azure-openai');
    await page.click('button.primary');
    await page.waitForURL(/failedProvider=azure-openai/);
    await rowCount(page, 1);
    expect(await page.locator('tr.row').textContent()).toContain('report-503');
    // Failed with a 429 (at any provider): the two that fell back after OpenAI's rate limit.
    await page.selectOption('select[name=failedProvider]', '');
    await page.fill('input[name=failedStatus]', '429');
    await page.click('button.primary');
    await page.waitForURL(/failedStatus=429/);
    await rowCount(page, 2);
    expect((await page.locator('tr.row').allTextContents()).join()).toMatch(/invoice-0815.*checkout-42/);
    // The same box takes an error code (a failure with no status): sent as failedError, and read back from a link.
    await page.fill('input[name=failedStatus]', 'upstream_timeout');
    await page.click('button.primary');
    await page.waitForURL(/\?failedError=upstream_timeout$/);
    await page.locator('td.empty').waitFor();
    await page.reload();
    await page.locator('td.empty').waitFor();
    expect(await page.inputValue('input[name=failedStatus]')).toBe('upstream_timeout');
    expect(await page.locator('#error').textContent()).toBe('');
    await page.fill('input[name=failedStatus]', '');
    await page.selectOption('select[name=fallback]', 'false');
    await page.fill('input[name=model]', 'gpt-4o-mini');
    await page.click('button.primary');
    await rowCount(page, 1);
    expect(await page.locator('tr.row').textContent()).toContain('search-19c2');

    await call(XSS_TRACE);
    await until(() => logs.length === 7);
    await page.click('#clear');
    await rowCount(page, 7);
    expect(await page.getByText(XSS_TRACE, { exact: true }).count()).toBe(1);
    expect(await page.evaluate(() => typeof (globalThis as { __xss?: unknown }).__xss)).toBe('undefined');
    expect(await page.locator('#rows img').count()).toBe(0);

    // "To" the current minute includes what happened during it (the inputs have minute precision).
    const now = new Date();
    const pad = (n: number) => String(n).padStart(2, '0');
    await page.fill('input[name=to]', `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}T${pad(now.getHours())}:${pad(now.getMinutes())}`);
    await page.click('button.primary');
    await rowCount(page, 7);
    expect(pageErrors).toEqual([]);
  });

  it("keeps one token per viewer of an origin, and keeps it when the app or a proxy in front, not the endpoint, answers 401", async () => {
    const A = 'token-of-viewer-a-0123456789';
    const B = 'token-of-viewer-b-0123456789';
    const C = 'token-of-viewer-c-0123456789';
    let proxyLogin = false;
    const host = express();
    host.use('/a/logs', logsMiddleware({ store, token: A, viewer: true }));
    host.use('/b/logs', logsMiddleware({ store, token: B, viewer: true }));
    // The host's or a proxy's own login in front (its session ran out): its 401 is not the endpoint's. (A Basic
    // challenge would have the browser ask for a password first.)
    host.use('/c/logs/api', (_req, res, next) => {
      if (!proxyLogin) return next();
      res.status(401).set('www-authenticate', 'Bearer realm="host-sso"').send('login needed');
    });
    host.use('/c/logs', logsMiddleware({ store, token: C, viewer: true }));
    const two = await listen(createServer(host));
    const p = await browser.newPage();
    try {
      const rows = () => p.locator('tr.row').first().waitFor();
      await p.goto(`${two.url}/a/logs/#token=${A}`);
      await rows();
      await p.goto(`${two.url}/b/logs/#token=${B}`);
      await rows();
      // Back to the first viewer with no link: its own token still answers.
      await p.goto(`${two.url}/a/logs/`);
      await rows();
      expect(await p.locator('#login.show').count()).toBe(0);

      await p.goto(`${two.url}/c/logs/#token=${C}`);
      await rows();
      proxyLogin = true;
      await p.click('#refresh');
      await p.locator('#error.show').waitFor();
      expect(await p.textContent('#error')).toContain('not the logs endpoint');
      expect(await p.locator('#login.show').count()).toBe(0);
      expect(await p.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('switchyard-logs-token:/c/logs/'))).toBe(C);
    } finally {
      await p.close();
      await two.close();
    }
  });

  it('asks for the token when the page has none', async () => {
    const fresh = await browser.newPage();
    await fresh.goto(`${app.url}/switchyard/logs/`);
    await fresh.locator('#login.show').waitFor();
    await fresh.fill('#token', TOKEN);
    await fresh.click('#login button');
    await fresh.locator('tr.row').nth(6).waitFor();
    await fresh.close();
  });

  it('survives a crafted link, and never shows an unknown cost as free', async () => {
    await call('custom-model-1', 'my-finetune-x'); // served with usage, but no price is known for this model
    await until(() => logs.length === 8);
    expect(logs[7]!.usage).not.toBeNull();
    expect(logs[7]!.costUsd).toBeNull();
    const errors: string[] = [];
    const crafted = await browser.newPage();
    crafted.on('pageerror', (err) => errors.push(err.message));
    // Names the form's elements collection answers to besides its fields must not break filling the filters.
    await crafted.goto(`${app.url}/switchyard/logs/?length=1&item=2&model=my-finetune-x#token=${TOKEN}`);
    await rowCount(crafted, 1);
    expect(await crafted.locator('tr.row td').nth(6).textContent()).toBe('—');
    expect(await crafted.locator('#summary').textContent()).toContain('cost unknown');
    await crafted.close();

    // A time that is none goes to the API as it is and is refused there, with its reason: never widened to any time.
    // A filter given twice is said; the last one is used.
    const wrong = await browser.newPage();
    wrong.on('pageerror', (err) => errors.push(err.message));
    await wrong.goto(`${app.url}/switchyard/logs/?from=garbage#token=${TOKEN}`);
    await wrong.locator('#error.show').waitFor();
    expect(await wrong.locator('#error').textContent()).toMatch(/from must be epoch milliseconds or an ISO 8601 date/);
    expect(await wrong.locator('tr.row').count()).toBe(0);
    await wrong.goto(`${app.url}/switchyard/logs/?model=gpt-4o-mini&model=my-finetune-x`);
    await rowCount(wrong, 1);
    expect(await wrong.locator('#error').textContent()).toBe('The link gives model more than once: the last one is used.');
    // Both failedStatus and failedError, which share one box: said, and the later one is searched (two 429s, one upstream code).
    await wrong.goto(`${app.url}/switchyard/logs/?failedError=rate_limit_exceeded&failedStatus=503`);
    await rowCount(wrong, 1);
    expect(await wrong.locator('#error').textContent()).toBe('The link gives both failedStatus and failedError, which the page searches one at a time: failedStatus is used.');
    expect(await wrong.inputValue('input[name=failedStatus]')).toBe('503');
    await wrong.close();

    // A token that is not valid percent-encoding: the page asks for one instead of dying.
    const mangled = await browser.newPage();
    mangled.on('pageerror', (err) => errors.push(err.message));
    await mangled.goto(`${app.url}/switchyard/logs/#token=%E0`);
    await mangled.locator('#login.show').waitFor();
    await mangled.close();
    expect(errors).toEqual([]);
  });

  it('keeps a shared link exact (times to the ms, the default config), and the pages loaded when it refreshes', async () => {
    // Sixty requests a second apart, within one minute, written straight into the store.
    const first = logs[0]!;
    const t0 = Math.floor((first.startedAt - 3_600_000) / 60_000) * 60_000;
    const bulk = (i: number, at: number): LogEvent => ({ ...first, requestId: `bulk-${i}`, traceId: `bulk-${String(i).padStart(2, '0')}`, startedAt: at });
    for (let i = 0; i < 60; i++) store.write(bulk(i, t0 + i * 1000));
    await store.flush();
    const shared = await browser.newPage();
    shared.on('pageerror', (err) => pageErrors.push(err.message));
    // The minute-precision boxes would widen from to t0 (60 rows): the link's own bounds hold, on load and on Apply.
    await shared.goto(`${app.url}/switchyard/logs/?from=${t0 + 15_000}&to=${t0 + 59_999}#token=${TOKEN}`);
    await rowCount(shared, 45);
    await shared.click('button.primary');
    await rowCount(shared, 45);
    expect(shared.url()).toContain(`from=${t0 + 15_000}`);

    // The default config (configId= with nothing after it) is shown as "(default)" and kept.
    await shared.goto(`${app.url}/switchyard/logs/?configId=&traceId=invoice-0815`);
    await shared.locator('td.empty').waitFor();
    expect(await shared.inputValue('input[name=configId]')).toBe('(default)');
    await shared.fill('input[name=traceId]', 'signup-7f3a');
    await shared.click('button.primary');
    await rowCount(shared, 1);
    expect(shared.url()).toMatch(/configId=(&|$)/);

    // Two pages loaded, then a refresh: the rows stay, and a new request comes on top.
    await shared.goto(`${app.url}/switchyard/logs/?from=${t0}&to=${t0 + 59_999}`);
    await rowCount(shared, 50);
    await shared.click('#more');
    await rowCount(shared, 60);
    store.write(bulk(60, t0 + 59_500));
    await store.flush();
    await shared.click('#refresh');
    await rowCount(shared, 61);
    expect(await shared.locator('tr.row').first().textContent()).toContain('bulk-60');
    // A request logged late (a long stream, logged when it ends under the time it started) lands among the rows
    // loaded: a refresh shows it there, not only what is newer than the top row.
    store.write({ ...bulk(61, t0 + 5_500), traceId: 'bulk-late' }); // below the first page
    await store.flush();
    await shared.click('#refresh');
    await rowCount(shared, 62);
    expect(await shared.locator('tr.row', { hasText: 'bulk-late' }).count()).toBe(1);
    // Every match on screen (no "Load more"): one logged late below the bottom row shows up too.
    await shared.goto(`${app.url}/switchyard/logs/?from=${t0 + 39_500}&to=${t0 + 59_999}`);
    await rowCount(shared, 21);
    store.write({ ...bulk(62, t0 + 39_700), traceId: 'bulk-late-bottom' });
    await store.flush();
    await shared.click('#refresh');
    await rowCount(shared, 22);
    expect(await shared.locator('tr.row').last().textContent()).toContain('bulk-late-bottom');

    // More stored than shown: a refresh with nothing new keeps the rows shown, not a page more each time.
    await shared.goto(`${app.url}/switchyard/logs/`);
    await rowCount(shared, 50);
    for (let i = 0; i < 2; i++) {
      await shared.click('#refresh');
      await shared.waitForTimeout(200);
      await rowCount(shared, 50);
    }
    expect(await shared.locator('#more').isVisible()).toBe(true);
    // More pages: the fallbacks and the cost are the loaded rows', and the header says so.
    expect(await shared.locator('#summary').textContent()).toMatch(/^50\+ requests · in the 50 loaded: \d+ fell back · /);
    // Totals counts every match, as the store's summary does, and says since when.
    const all = (await (await fetch(`${app.url}/switchyard/logs/api/summary?${new URL(shared.url()).search.slice(1)}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { requests: number; fallbacks: number };
    expect(all.requests).toBeGreaterThan(50);
    await shared.click('#totals');
    await shared.locator('#summary', { hasText: `${all.requests} requests · ${all.fallbacks} fell back · ` }).waitFor();
    expect(await shared.locator('#summary').textContent()).toMatch(/ · since (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\.\d{3}$/);
    expect(await shared.locator('#updated').textContent()).toMatch(/^ · updated \d\d:\d\d:\d\d$/);
    expect(await shared.locator('#totals').isVisible()).toBe(false);
    await shared.close();
    expect(pageErrors).toEqual([]);
  });

  it('marks an answer that broke after it started, counts only upstream calls as tries (not a target skipped), and stops live mode at a refused token', async () => {
    const first = logs[0]!;
    const at = Date.now() + 60_000; // newest: on top
    store.write({
      ...first, requestId: 'broken-1', traceId: 'broken-stream', startedAt: at, status: 200, stream: true, fallback: false,
      attempts: [{ target: 'targets[0]', provider: 'openai', model: 'gpt-4o', status: 200, durationMs: 5, error: { code: 'stream_interrupted', message: 'cut' } }],
      servedBy: { target: 'targets[0]', provider: 'openai', model: 'gpt-4o' },
    });
    store.write({
      ...first, requestId: 'skipped-1', traceId: 'skipped-target', startedAt: at - 1, status: 429, fallback: false,
      attempts: [
        // What the upstream said, as another writer shaped it (a string): shown as it is.
        { target: 'targets[0]', provider: 'openai', model: 'o3', status: 429, durationMs: 5, upstreamError: 'Too many requests' as never },
        { target: 'targets[1]', provider: 'azure-openai', model: 'o3', status: null, durationMs: 0, error: { code: 'model_not_deployed', message: 'none' } },
      ],
      servedBy: { target: 'targets[0]', provider: 'openai', model: 'o3' },
    });
    store.write({
      ...first, requestId: 'circuit-1', traceId: 'circuit-open', startedAt: at - 2, status: 200, fallback: true,
      attempts: [
        { target: 'targets[0].targets[0]', provider: 'openai', model: 'gpt-4o', status: null, durationMs: 0, error: { code: 'circuit_open', message: 'Skipped: its circuit is open (cb_config) after 5 failures within 30 s; it is tested again in 27 s.' } },
        { target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod', status: 200, durationMs: 5 },
      ],
      servedBy: { target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod' },
    });
    // A stream whose first event was the upstream's error: Switchyard's code on the attempt, the upstream's beside it.
    store.write({
      ...first, requestId: 'quota-1', traceId: 'quota-stream', startedAt: at - 3, status: 200, stream: true, fallback: true,
      attempts: [
        { target: 'targets[0]', provider: 'openai', model: 'gpt-4o', status: 200, durationMs: 5, error: { code: 'upstream_error_event', message: 'You exceeded your current quota.' }, upstreamError: { code: 'insufficient_quota', message: 'You exceeded your current quota.' } },
        { target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod', status: 200, durationMs: 5 },
      ],
      servedBy: { target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod' },
    });
    await store.flush();
    const page = await browser.newPage();
    await page.goto(`${app.url}/switchyard/logs/#token=${TOKEN}`);
    // A target skipped as its circuit was open: a fallback, one upstream call, not broken.
    const circuit = page.locator('tr.row', { hasText: 'circuit-open' });
    await circuit.waitFor();
    expect(await circuit.locator('.badge-fallback').getAttribute('title')).toBe('Served by targets[1] after 1 earlier target(s) tried or skipped');
    expect(await circuit.textContent()).not.toMatch(/tries|broke/);
    const broken = page.locator('tr.row', { hasText: 'broken-stream' });
    await broken.waitFor();
    expect(await broken.locator('.broke').textContent()).toBe('broke');
    const skipped = page.locator('tr.row', { hasText: 'skipped-target' });
    expect(await skipped.textContent()).not.toContain('tries');
    // The drawer on a laptop: a long error, what on-call opens it for, stays inside it (no sideways scroll).
    await circuit.click();
    const error = page.locator('#detail.open #attempts td', { hasText: 'its circuit is open' });
    await error.waitFor();
    // Read in one go: the drawer may still be sliding in, and two reads would see it in two places.
    const fits = await error.evaluate((cell) => {
      const drawer = cell.closest('#detail')!;
      return cell.getBoundingClientRect().right <= drawer.getBoundingClientRect().right && drawer.scrollWidth <= drawer.clientWidth;
    });
    expect(fits).toBe(true);
    await page.keyboard.press('Escape');
    await skipped.click();
    const said = page.locator('#detail.open #attempts td', { hasText: 'Too many requests' });
    await said.waitFor();
    expect(await said.textContent()).toBe('Too many requests');
    await page.keyboard.press('Escape');

    // "Failed with" takes a code in another case as the code logged (the API matches codes exactly); the attempt's
    // card says the upstream's code, the one searched for, beside Switchyard's own.
    await page.fill('input[name=failedStatus]', 'Insufficient_Quota');
    await page.press('input[name=failedStatus]', 'Enter');
    await page.waitForURL(/\?failedError=insufficient_quota$/);
    await rowCount(page, 1);
    expect(await page.inputValue('input[name=failedStatus]')).toBe('insufficient_quota');
    await page.locator('tr.row', { hasText: 'quota-stream' }).click();
    const card = page.locator('#detail.open #attempts tbody tr').first();
    await card.waitFor();
    expect(await card.locator('td').nth(6).textContent()).toBe('upstream_error_event: You exceeded your current quota.upstream: insufficient_quota');
    await page.keyboard.press('Escape');
    // What is none of a status, a class or a code is said, not searched for as a code nothing has.
    for (const typo of ['50x', '429, 503']) {
      await page.fill('input[name=failedStatus]', typo);
      await page.press('input[name=failedStatus]', 'Enter');
      await page.locator('#error.show', { hasText: `Failed with takes a status (503), a class (5xx) or an error code` }).waitFor();
      await rowCount(page, 0);
      expect(await page.getAttribute('input[name=failedStatus]', 'aria-invalid')).toBe('true');
    }
    // A name Object.prototype has is no known code: searched as typed, not replaced by what the prototype holds.
    await page.fill('input[name=failedStatus]', 'constructor');
    await page.press('input[name=failedStatus]', 'Enter');
    await page.waitForURL(/\?failedError=constructor$/);
    expect(await page.inputValue('input[name=failedStatus]')).toBe('constructor');
    await page.fill('input[name=failedStatus]', '');
    await page.press('input[name=failedStatus]', 'Enter');
    await circuit.waitFor();
    expect(await page.getAttribute('input[name=failedStatus]', 'aria-invalid')).toBeNull();

    // The token stops working while live: live mode stops, and what is typed in the token box stays.
    await page.check('#live');
    await page.evaluate("sessionStorage.setItem('switchyard-logs-token:/switchyard/logs/', 'rotated-away')");
    await page.click('#refresh');
    await page.locator('#login.show').waitFor();
    expect(await page.isChecked('#live')).toBe(false);
    await page.fill('#token', 'being-typed');
    await page.click('#refresh');
    await page.waitForTimeout(200);
    expect(await page.inputValue('#token')).toBe('being-typed');
    await page.close();
  });

  it('counts Totals one at a time: from the keyboard, held by a live tick, failing back to the loaded rows, a stale failure unshown', async () => {
    const page = await browser.newPage();
    await page.clock.install();
    let lists = 0;
    let sums = 0;
    let hold = false;
    const held: Array<(fail: boolean) => Promise<void>> = [];
    await page.route('**/switchyard/logs/api/requests?**', async (route) => {
      lists++;
      await route.continue();
    });
    await page.route('**/switchyard/logs/api/summary**', async (route) => {
      sums++;
      if (!hold) return route.continue();
      held.push((fail) => (fail ? route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { message: 'The logs could not be read.', type: 'api_error', param: null, code: 'internal_error' } }) }) : route.continue()));
    });
    // Sixty requests of a model of their own: more than a page, so Totals is offered. The ten oldest (not on the
    // first page) fell back and cost more; one on the first page has no price.
    const t0 = Date.now() - 120_000;
    for (let i = 0; i < 60; i++) {
      const old = i < 10;
      store.write({ ...logs[0]!, requestId: `totals-${i}`, traceId: `totals-${i}`, model: 'totals-model', startedAt: t0 + i, fallback: old, costUsd: old ? 0.001 : i === 59 ? null : 0.000075 });
    }
    await store.flush();
    await page.goto(`${app.url}/switchyard/logs/?model=totals-model#token=${TOKEN}`);
    await rowCount(page, 50);
    expect(await page.locator('#summary').textContent()).toMatch(/^50\+ requests · in the 50 loaded: 0 fell back · \$0\.00367 \+ 1 unpriced$/);
    // From the keyboard: every match's figures come in (announced: the header is a status), the focus moves on.
    await page.focus('#totals');
    await page.keyboard.press('Enter');
    const since = await page.evaluate((t) => (globalThis as unknown as { fmtTime(t: number): string }).fmtTime(t), t0);
    await page.locator('#summary', { hasText: `60 requests · 10 fell back · $0.0137 + 1 unpriced · since ${since}` }).waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } } }).document.activeElement.id)).toBe('refresh');
    expect(await page.getAttribute('#summary', 'role')).toBe('status');
    // Another search (more than a page again): the totals were the last one's, so the loaded rows' figures show.
    await page.fill('input[name=minTokens]', '1');
    await page.click('button.primary');
    await page.locator('#summary', { hasText: 'in the 50 loaded' }).waitFor();
    await page.click('#totals');
    await page.locator('#summary', { hasText: /^60 requests/ }).waitFor();
    // Live: a tick refreshes the rows and asks for the totals again; while those are on their way, ticks ask nothing.
    hold = true;
    await page.check('#live');
    await page.clock.runFor(5_000);
    await until(() => sums === 3);
    const listsThen = lists;
    await page.clock.runFor(20_000);
    await page.waitForTimeout(100);
    expect([sums, lists]).toEqual([3, listsThen]);
    // Totals that never come back (a stalled connection) hold live mode back for 30 s, not for good.
    await page.clock.runFor(15_000);
    await until(() => sums === 4 && lists === listsThen + 1);
    // They fail: the header goes back to the loaded rows' figures, and the error says what failed.
    for (const fail of held.splice(0)) await fail(true);
    await page.locator('#summary', { hasText: 'in the 50 loaded' }).waitFor();
    expect(await page.locator('#error').textContent()).toBe('Could not count the totals: The logs could not be read.');
    await page.uncheck('#live');
    // Totals asked, then another search (more than a page) before they fail: its own Totals are asked at once, not
    // held behind the last search's; the last search's failure is not shown under it.
    await page.click('#totals');
    await until(() => held.length === 1);
    await page.fill('input[name=maxTokens]', '100');
    await page.click('button.primary');
    await page.locator('#summary', { hasText: 'in the 50 loaded' }).waitFor();
    await page.click('#totals');
    await until(() => held.length === 2);
    await held.pop()!(false);
    await page.locator('#summary', { hasText: /^60 requests/ }).waitFor();
    await held.shift()!(true);
    await page.waitForTimeout(200);
    expect(await page.locator('#error').textContent()).toBe('');
    expect(await page.locator('#summary').textContent()).toMatch(/^60 requests/);
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await page.close();
  });

  it('asks for no refresh in live mode while the last one is still on its way (a slow search over a big store)', async () => {
    const page = await browser.newPage();
    await page.clock.install();
    let asked = 0;
    const held: Array<() => Promise<void>> = [];
    await page.route('**/switchyard/logs/api/requests?**', async (route) => {
      asked++;
      // The first load answers; every later one waits until released, as a query behind a slow one would.
      if (asked === 1) await route.continue();
      else held.push(() => route.continue());
    });
    await page.goto(`${app.url}/switchyard/logs/#token=${TOKEN}`);
    await page.locator('tr.row').first().waitFor();
    await page.check('#live');
    await page.clock.runFor(5_000);
    await until(() => asked === 2);
    await page.clock.runFor(20_000); // four more ticks, the refresh still on its way
    await page.waitForTimeout(100);
    expect(asked).toBe(2);
    // One that never comes back (a stalled connection) does not stop live mode for good: after 30 s, ticks ask again.
    await page.clock.runFor(15_000);
    await until(() => asked === 3);
    for (const release of held.splice(0)) await release();
    // The two released answers settle in their own time (the stale one may clear 'busy' before the newer one is in):
    // tick until live mode asks again, as it does once none is on its way.
    for (let tick = 0; tick < 20 && asked < 4; tick++) {
      await page.clock.runFor(5_000);
      await page.waitForTimeout(50);
    }
    expect(asked).toBe(4);
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await page.close();
  });

  it('never shows rows under filters they do not match, keeps long values in their column, and works from the keyboard and Back', async () => {
    const model = `ft:gpt-4o-mini:${'x'.repeat(180)}`;
    await call('long-model-1', model);
    await until(() => logs.length === 9);
    const p = await browser.newPage({ viewport: { width: 1400, height: 760 } });
    p.on('pageerror', (err) => pageErrors.push(err.message));
    await p.goto(`${app.url}/switchyard/logs/?traceId=long-model-1#token=${TOKEN}`);
    await rowCount(p, 1);
    // The model is cut with an ellipsis: the table fits the window, its last column in view.
    expect((await p.locator('#requests').boundingBox())!.width).toBeLessThanOrEqual(1400);
    expect(await p.locator('th').first().textContent()).toMatch(/^Time \(UTC/);

    // A search the API refuses clears the table: its rows answered another search.
    await p.fill('input[name=traceId]', '');
    await p.click('button.primary');
    await rowCount(p, 50);
    await p.fill('input[name=status]', '42');
    await p.click('button.primary');
    await p.locator('#error.show').waitFor();
    await rowCount(p, 0);

    // Back returns to the search before; the form follows.
    await p.goBack();
    await rowCount(p, 50);
    expect(await p.inputValue('input[name=status]')).toBe('');
    await p.goBack();
    await rowCount(p, 1);
    expect(await p.inputValue('input[name=traceId]')).toBe('long-model-1');

    // Enter opens a row, the drawer takes the focus, Escape gives it back to the row.
    await p.locator('tr.row').first().focus();
    await p.keyboard.press('Enter');
    await p.locator('#detail.open #attempts tbody tr').first().waitFor();
    expect(await focused(p)).toEqual({ id: 'close' });
    await p.keyboard.press('Escape');
    expect(await focused(p)).toEqual({ id: '', requestId: logs[8]!.requestId });

    // A value the page has no option for is sent as it is, for the API to refuse, not widened to "any".
    await p.goto(`${app.url}/switchyard/logs/?fallback=yes`);
    await p.locator('#error.show').waitFor();
    expect(await p.locator('#error').textContent()).toContain('fallback');
    await rowCount(p, 0);
    await p.close();
    expect(pageErrors).toEqual([]);
  });

  it('shows each time with its own offset across a DST change, a request at once as it loads, and a failed load as a failure', async () => {
    // Two requests a DST change apart, read in Berlin: July is UTC+02:00, November UTC+01:00.
    const memory = new MemoryLogStore();
    const july = { ...logs[0]!, requestId: 'req-july', traceId: 'summer-1', startedAt: Date.UTC(2026, 6, 15, 12) };
    const november = { ...logs[0]!, requestId: 'req-november', traceId: 'winter-1', startedAt: Date.UTC(2026, 10, 15, 12) };
    memory.write(july);
    memory.write(november);
    let broken = false;
    let slowGet = 0;
    const store: LogStore = {
      write: (event) => memory.write(event),
      query: (query) => (broken ? Promise.reject(new Error('the disk is gone')) : memory.query(query)),
      get: async (id) => {
        await new Promise((r) => setTimeout(r, slowGet));
        return memory.get(id);
      },
    };
    // A proxy in front whose session ran out: its sign-in page, with a 200.
    let signIn = false;
    const host = express();
    host.use('/logs/api', (_req, res, next) => (signIn ? res.type('html').send('<html>Sign in</html>') : next()));
    host.use('/logs', logsMiddleware({ store, allowUnauthenticated: true, viewer: true }));
    const viewer = await listen(createServer(host));
    const context = await browser.newContext({ timezoneId: 'Europe/Berlin', viewport: { width: 1600, height: 760 } });
    try {
      const berlin = await context.newPage();
      await berlin.goto(`${viewer.url}/logs/`);
      await rowCount(berlin, 2);
      expect(await berlin.locator('#time-col').textContent()).toBe('Time (Europe/Berlin)');
      const started = async (trace: string) => {
        await berlin.locator('tr.row', { hasText: trace }).click();
        await berlin.locator('#detail.open #attempts').waitFor();
        return (await berlin.locator('#detail dd').nth(2).textContent())!;
      };
      expect(await started('summer-1')).toBe('2026-07-15 14:00:00.000 (UTC+02:00) · 2026-07-15T12:00:00.000Z');
      expect(await started('winter-1')).toBe('2026-11-15 13:00:00.000 (UTC+01:00) · 2026-11-15T12:00:00.000Z');
      await berlin.keyboard.press('Escape');

      // A slow record: the drawer opens at once and says it is on its way.
      slowGet = 1500;
      await berlin.locator('tr.row', { hasText: 'summer-1' }).click();
      await berlin.locator('#detail.open').waitFor({ timeout: 500 });
      expect(await berlin.locator('#detail-body').textContent()).toBe('Loading req-july…');
      // Typing in a filter meanwhile: the record's arrival leaves the focus there (it moves only from the row clicked).
      await berlin.focus('input[name=model]');
      await berlin.keyboard.type('gpt');
      await berlin.locator('#detail.open #attempts').waitFor();
      expect(await berlin.evaluate(() => (globalThis as unknown as { document: { activeElement: { name?: string } } }).document.activeElement.name)).toBe('model');
      await berlin.keyboard.type('-4o');
      expect(await berlin.inputValue('input[name=model]')).toBe('gpt-4o');
      await berlin.fill('input[name=model]', '');
      await berlin.keyboard.press('Escape');

      // A search the store fails: a failure, not "no requests match", and no fresh "updated" time.
      broken = true;
      await berlin.fill('input[name=traceId]', 'winter-1');
      await berlin.press('input[name=traceId]', 'Enter');
      await berlin.locator('td.empty', { hasText: 'Could not load the logs' }).waitFor();
      expect(await berlin.locator('#summary').textContent()).toBe('Could not load the logs');
      expect(await berlin.locator('#updated').textContent()).toBe('');

      // A sign-in page where the API's answer should be: a failure too, and the page recovers once the API is back.
      broken = false;
      signIn = true;
      await berlin.fill('input[name=traceId]', 'summer-1');
      await berlin.press('input[name=traceId]', 'Enter');
      await berlin.locator('td.empty', { hasText: 'something other than the logs API' }).waitFor();
      signIn = false;
      await berlin.click('#refresh');
      await rowCount(berlin, 1);
      expect(await berlin.locator('#summary').textContent()).toMatch(/^1 request · 0 fell back · \$[\d.]+$/);
      expect(await berlin.locator('#updated').textContent()).toMatch(/^ · updated \d\d:\d\d:\d\d$/);
    } finally {
      await context.close();
      await viewer.close();
    }
  });

  it('fits a phone and a tablet: no sideways scroll to a status, a fallback marker or an attempt, and a skip link leads past the filters', async () => {
    type Box = { left: number; right: number };
    type Scrolled = { scrollWidth: number; clientWidth: number };
    type Doc = { querySelector(selector: string): Scrolled | null; querySelectorAll(selector: string): ArrayLike<{ getBoundingClientRect(): Box }> };
    /** Whether `selector`'s boxes all lie within the viewport, and `scroller` scrolls sideways. */
    const layout = (page: Page, selector: string, scroller: string) =>
      page.evaluate(
        ([sel, scroll]) => {
          const doc = (globalThis as unknown as { document: Doc }).document;
          const boxes = Array.from(doc.querySelectorAll(sel!), (node) => node.getBoundingClientRect());
          const area = doc.querySelector(scroll!)!;
          return { count: boxes.length, right: Math.max(...boxes.map((box) => box.right)), left: Math.min(...boxes.map((box) => box.left)), sideways: area.scrollWidth > area.clientWidth };
        },
        [selector, scroller],
      );
    // A request from another day shows its date too, the widest time cell: stamped a day ahead (a writer's clock), it
    // is the newest row, on the first page however many requests the tests before made.
    store.write({ ...logs[0]!, requestId: 'req-other-day', traceId: 'other-day-1', startedAt: Date.now() + 86_400_000 });
    await store.flush();
    // A phone, an iPad upright, just past the cards (the table, its long cells wrapped), a small laptop.
    for (const width of [390, 820, 1000, 1024]) {
      // Without the drawer's slide (as the system setting asks), boxes are read where they stay.
      const context = await browser.newContext({ viewport: { width, height: 844 }, isMobile: width < 700, hasTouch: width < 700, reducedMotion: 'reduce' });
      try {
        const small = await context.newPage();
        await small.goto(`${app.url}/switchyard/logs/#token=${TOKEN}`);
        await small.locator('tr.row').first().waitFor();
        await small.locator('tr.row', { hasText: 'other-day-1' }).waitFor();
        for (const selector of ['tr.row .chip', 'tr.row .badge-fallback', 'tr.row .trace']) {
          const seen = await layout(small, selector, 'main');
          expect([width, selector, seen.count > 0, seen.left >= 0, seen.right <= width, seen.sideways]).toEqual([width, selector, true, true, true, false]);
        }
        // The cards hide the column headers from sight only: a screen reader still names each cell's column.
        expect(await small.getByRole('columnheader', { name: 'Latency' }).count()).toBe(1);
        if (width === 1024) {
          // The drawer's attempts table: a target such as targets[0] stays whole on its line.
          await small.locator('tr.row', { hasText: 'checkout-42' }).click();
          await small.locator('#detail.open #attempts').waitFor();
          type Doc = { createRange(): { selectNodeContents(n: unknown): void; getClientRects(): { length: number } }; querySelectorAll(s: string): ArrayLike<unknown> };
          const lines = await small.evaluate(() => {
            const doc = (globalThis as unknown as { document: Doc }).document;
            return Array.from(doc.querySelectorAll('#attempts td:nth-child(2)'), (cell) => {
              const range = doc.createRange();
              range.selectNodeContents(cell);
              return range.getClientRects().length;
            });
          });
          expect(lines).toEqual([1, 1]);
        }
        if (width !== 390) continue;

        // From the top of the page, Tab and Enter reach the first request; Enter opens it.
        await small.keyboard.press('Tab');
        expect((await focused(small)).id).toBe('skip');
        await small.keyboard.press('Enter');
        const first = await focused(small);
        expect(first.requestId).toBe(await small.locator('tr.row').first().getAttribute('data-request-id'));
        // The address bar kept no #fragment: Back still goes through searches.
        expect(new URL(small.url()).hash).toBe('');
        // A request that fell back: its attempts, statuses included, fit the drawer.
        await small.locator('tr.row', { hasText: 'checkout-42' }).click();
        await small.locator('#detail.open #attempts').waitFor();
        const attempts = await layout(small, '#attempts .chip', '#detail');
        expect([attempts.count, attempts.right <= width, attempts.sideways]).toEqual([2, true, false]);
        expect(await small.getByRole('columnheader', { name: 'Error' }).count()).toBe(1);
        // The drawer covers the screen: the keyboard stays in it, not on the rows hidden behind it.
        expect((await focused(small)).id).toBe('close');
        await small.keyboard.press('Shift+Tab');
        expect((await focused(small)).requestId).toBeUndefined();
        await small.keyboard.press('Escape');
        expect((await focused(small)).requestId).toBe(await small.locator('tr.row', { hasText: 'checkout-42' }).getAttribute('data-request-id'));

        // The phone turned (the window widened): the page beside the drawer is usable again; narrowed, covered again.
        const eventually = async (cond: () => Promise<boolean>) => {
          const end = Date.now() + 3000;
          while (!(await cond())) {
            if (Date.now() > end) throw new Error('not in time');
            await new Promise((r) => setTimeout(r, 20));
          }
        };
        const inert = () => small.evaluate(() => (globalThis as unknown as { document: { querySelector(s: string): { inert: boolean } } }).document.querySelector('main').inert);
        await small.keyboard.press('Enter');
        await small.locator('#detail.open #attempts').waitFor();
        expect(await inert()).toBe(true);
        await small.setViewportSize({ width: 1300, height: 844 });
        await eventually(async () => !(await inert()));
        await small.locator('tr.row', { hasText: 'signup-7f3a' }).click();
        await small.locator('#detail-body', { hasText: 'signup-7f3a' }).waitFor();
        await small.setViewportSize({ width: 390, height: 844 });
        await eventually(async () => (await inert()) && (await focused(small)).id === 'close');
        await small.keyboard.press('Escape');

        // A refused token while the drawer covers the page: the drawer closes, and the token field it hid takes the focus.
        await small.evaluate(() => (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem('switchyard-logs-token:/switchyard/logs/', 'not-the-token-0123456789'));
        await small.keyboard.press('Enter');
        await small.locator('#login.show').waitFor();
        expect([(await focused(small)).id, await small.locator('#detail.open').count(), await inert()]).toEqual(['token', 0, false]);
      } finally {
        await context.close();
      }
    }
  });
  it('shows which filters are set, keeps every column beside the open drawer, lets a trace id be selected, and closes a covering drawer on Back', async () => {
    type El = { getBoundingClientRect(): { left: number; right: number }; scrollWidth: number; clientWidth: number };
    type Doc = { querySelector(s: string): El | null; querySelectorAll(s: string): ArrayLike<El> };
    // A time zone with a long name: the widest Time column header.
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, reducedMotion: 'reduce', timezoneId: 'Europe/Berlin' });
    try {
      const wide = await context.newPage();
      wide.on('pageerror', (err) => pageErrors.push(err.message));
      await wide.goto(`${app.url}/switchyard/logs/?model=gpt-4o#token=${TOKEN}`);
      await wide.locator('tr.row').first().waitFor();
      // A value in a filter reads in the text's colour, apart from the grey of its label and of an empty box's hint.
      const colours = await wide.evaluate(() => {
        const style = (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle;
        const d = (globalThis as unknown as { document: { querySelector(s: string): unknown; body: unknown } }).document;
        return [style(d.querySelector('input[name=model]')).color, style(d.querySelector('input[name=status]')).color, style(d.body).color, style(d.querySelector('form#filters label')).color];
      });
      expect(colours[0]).toBe(colours[2]);
      expect(colours[1]).toBe(colours[2]);
      expect(colours[3]).not.toBe(colours[2]);

      // The drawer open beside the table (a 1440 px laptop): every request's status and fallback marker stay in view.
      await wide.locator('tr.row.fb').first().click();
      await wide.locator('#detail.open #attempts tbody tr').first().waitFor();
      const beside = await wide.evaluate(() => {
        const d = (globalThis as unknown as { document: Doc }).document;
        const main = d.querySelector('main')!;
        const edge = (s: string) => Math.max(...Array.from(d.querySelectorAll(s), (e) => e.getBoundingClientRect().right));
        return { sideways: main.scrollWidth > main.clientWidth, chips: edge('tr.row .chip'), markers: edge('tr.row .badge-fallback'), drawer: d.querySelector('#detail')!.getBoundingClientRect().left };
      });
      expect(beside.sideways).toBe(false);
      expect(beside.chips).toBeLessThanOrEqual(beside.drawer);
      expect(beside.markers).toBeLessThanOrEqual(beside.drawer);

      // Selecting a trace id with the mouse (to copy it) opens no request and keeps the selection.
      await wide.keyboard.press('Escape');
      const trace = wide.locator('tr.row .trace').nth(1);
      const box = (await trace.boundingBox())!;
      await wide.mouse.move(box.x + 2, box.y + box.height / 2);
      await wide.mouse.down();
      await wide.mouse.move(box.x + box.width - 2, box.y + box.height / 2, { steps: 5 });
      await wide.mouse.up();
      const selection = await wide.evaluate(() => String((globalThis as unknown as { getSelection(): unknown }).getSelection()));
      expect(selection.length).toBeGreaterThan(3);
      expect(await trace.textContent()).toContain(selection);
      expect(await wide.locator('#detail.open').count()).toBe(0);

      // A cost copied from the table, dollar sign and all, is a cost filter; the theme chosen stays after a reload.
      await wide.fill('input[name=minCostUsd]', '$0.00001');
      await wide.click('button.primary');
      await wide.waitForURL(/minCostUsd=0\.00001/);
      await wide.click('#theme');
      const theme = await wide.evaluate(() => (globalThis as unknown as { document: { documentElement: { dataset: { theme?: string } } } }).document.documentElement.dataset.theme);
      await wide.reload();
      await wide.locator('tr.row').first().waitFor();
      expect(await wide.evaluate(() => (globalThis as unknown as { document: { documentElement: { dataset: { theme?: string } } } }).document.documentElement.dataset.theme)).toBe(theme);

      // Opening a request keeps its row where it was on screen, though the list beside the drawer turns into cards;
      // Back closes the drawer, whatever the width.
      // Enough requests to scroll through, whatever ran before.
      for (let i = 0; i < 30; i++) store.write({ ...logs[0]!, requestId: `req-scroll-${i}`, traceId: `scroll-${i}`, startedAt: logs[0]!.startedAt - 1000 * (i + 1) });
      await store.flush();
      await wide.goto(`${app.url}/switchyard/logs/`);
      await wide.locator('tr.row').nth(20).waitFor();
      await wide.mouse.wheel(0, 400);
      const row = wide.locator('tr.row').nth(14);
      await row.scrollIntoViewIfNeeded();
      const before = (await row.boundingBox())!.y;
      await row.click();
      await wide.locator('#detail.open #attempts').waitFor();
      expect(Math.abs((await row.boundingBox())!.y - before)).toBeLessThanOrEqual(2);
      await wide.goBack();
      await wide.locator('#detail:not(.open)').waitFor({ state: 'attached' });
      expect(Math.abs((await row.boundingBox())!.y - before)).toBeLessThanOrEqual(2);
      // A small laptop's window, the drawer closed: the table fits, however long the time zone's name.
      await wide.setViewportSize({ width: 1024, height: 900 });
      const fits = await wide.evaluate(() => {
        const main = (globalThis as unknown as { document: { querySelector(s: string): { scrollWidth: number; clientWidth: number } } }).document.querySelector('main');
        return main.scrollWidth <= main.clientWidth;
      });
      expect(fits).toBe(true);
      // Only a new width brings the focused row back into view: a height change (a phone's address bar hiding as the
      // list scrolls) leaves the list where it was scrolled to.
      const scrollY = () => wide.evaluate(() => (globalThis as unknown as { scrollY: number }).scrollY);
      await wide.locator('tr.row').nth(2).focus();
      await wide.mouse.wheel(0, 600);
      for (const end = Date.now() + 2000; (await scrollY()) === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
      const scrolled = await scrollY();
      expect(scrolled).toBeGreaterThan(0);
      await wide.setViewportSize({ width: 1024, height: 820 });
      await new Promise((r) => setTimeout(r, 100));
      expect(await scrollY()).toBe(scrolled);
      await wide.close();
    } finally {
      await context.close();
    }

    // A phone: the drawer covers the screen, and Back closes it, leaving the search as it was.
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, reducedMotion: 'reduce' });
    try {
      const small = await phone.newPage();
      await small.goto(`${app.url}/switchyard/logs/#token=${TOKEN}`);
      await small.locator('tr.row').first().waitFor();
      await small.selectOption('select[name=fallback]', 'true');
      await small.click('button.primary');
      await small.waitForURL(/fallback=true/);
      await small.locator('#rows:not(.busy)').waitFor({ state: 'attached' }); // the search's own rows, not the last one's
      await small.locator('tr.row').first().click();
      await small.locator('#detail.open #attempts').waitFor();
      await small.goBack();
      await small.locator('#detail:not(.open)').waitFor({ state: 'attached' });
      expect(new URL(small.url()).search).toBe('?fallback=true');
      expect(await small.inputValue('select[name=fallback]')).toBe('true');
      // Closed with its button, the drawer leaves no step behind: Back then goes to the search before.
      await small.locator('tr.row').first().click();
      await small.locator('#detail.open #attempts').waitFor();
      await small.click('#close');
      await small.goBack();
      await small.waitForURL((url) => url.search === '');
      expect(await small.inputValue('select[name=fallback]')).toBe('');

      // Forward onto a request's step opens it again; several steps back at once land on the search they name.
      await small.selectOption('select[name=fallback]', 'true');
      await small.click('button.primary');
      await small.waitForURL(/fallback=true/);
      await small.locator('#rows:not(.busy)').waitFor({ state: 'attached' }); // the search's own rows, not the last one's
      const id = await small.locator('tr.row').first().getAttribute('data-request-id');
      await small.locator('tr.row').first().click();
      await small.locator('#detail.open #attempts').waitFor();
      await small.goBack();
      await small.locator('#detail:not(.open)').waitFor({ state: 'attached' });
      await small.goForward();
      await small.locator(`#detail.open #detail-body[data-request-id="${id}"]`).waitFor();
      await small.evaluate(() => (globalThis as unknown as { history: { go(n: number): void } }).history.go(-2));
      await small.waitForURL((url) => url.search === '');
      await small.locator('#detail:not(.open)').waitFor({ state: 'attached' });
      expect(await small.inputValue('select[name=fallback]')).toBe('');
      // Reloaded on a request's step, the drawer opens again: Back still closes it, not a step that shows nothing.
      const reopened = await small.locator('tr.row').first().getAttribute('data-request-id');
      await small.locator('tr.row').first().click();
      await small.locator('#detail.open #attempts').waitFor();
      await small.reload();
      await small.locator(`#detail.open #detail-body[data-request-id="${reopened}"]`).waitFor();
      await small.goBack();
      await small.locator('#detail:not(.open)').waitFor({ state: 'attached' });
      expect(new URL(small.url()).search).toBe('');

      // A search made beside the drawer once the tablet turned sideways takes the drawer's step: the address bar
      // names it after the drawer closes, and Back goes to the search before.
      await small.locator('tr.row').first().click();
      await small.locator('#detail.open #attempts').waitFor();
      await small.setViewportSize({ width: 1000, height: 700 });
      const inert = () => small.evaluate(() => (globalThis as unknown as { document: { querySelector(s: string): { inert: boolean } } }).document.querySelector('main').inert);
      for (const end = Date.now() + 3000; await inert(); ) if (Date.now() > end) throw new Error('the page stayed covered');
      await small.selectOption('select[name=fallback]', 'true');
      await small.locator('form#filters').evaluate((form) => (form as unknown as { requestSubmit(): void }).requestSubmit());
      await small.waitForURL(/fallback=true/);
      await small.locator('#rows:not(.busy)').waitFor({ state: 'attached' }); // the search's own rows, not the last one's
      await small.keyboard.press('Escape');
      await small.locator('#detail:not(.open)').waitFor({ state: 'attached' });
      expect(new URL(small.url()).search).toBe('?fallback=true');
      await small.goBack();
      await small.waitForURL((url) => url.search === '');
      expect(await small.inputValue('select[name=fallback]')).toBe('');
    } finally {
      await phone.close();
    }
    expect(pageErrors).toEqual([]);
  });
  it('names its controls and the open row for assistive tech, hints in readable grey, and fits an error code in Failed with', async () => {
    const p = await browser.newPage({ viewport: { width: 1600, height: 760 } });
    p.on('pageerror', (err) => pageErrors.push(err.message));
    try {
      await p.goto(`${app.url}/switchyard/logs/#token=${TOKEN}`);
      await p.locator('tr.row').nth(1).waitFor();
      // Each control by what it does, not by its glyph or by a word another box shares.
      for (const [role, name] of [['button', 'Light or dark theme'], ['textbox', 'Min cost USD'], ['textbox', 'Max cost USD'], ['textbox', 'Min tokens'], ['textbox', 'Max tokens']] as const) {
        expect([name, await p.getByRole(role, { name, exact: true }).count()]).toEqual([name, 1]);
      }
      // A row says it opens something, and the open one says it is.
      const hint = await p.locator('tr.row').first().getAttribute('aria-describedby');
      expect(await p.locator(`#${hint}`).textContent()).toMatch(/open.*details/i);
      await p.locator('tr.row').nth(1).click();
      await p.locator('#detail.open #attempts').waitFor();
      expect(await p.getByRole('button', { name: 'Close details', exact: true }).count()).toBe(1);
      expect(await p.locator('tr.row[aria-current=true]').count()).toBe(1);
      expect(await p.locator('tr.row').nth(1).getAttribute('aria-current')).toBe('true');
      await p.keyboard.press('Escape');
      expect(await p.locator('tr.row[aria-current]').count()).toBe(0);

      // Placeholders read at 4.5:1 or more against their box, in either theme.
      const contrast = () =>
        p.evaluate(() => {
          type Style = { color: string; backgroundColor: string };
          const g = globalThis as unknown as { getComputedStyle(e: unknown, pseudo?: string): Style; document: { querySelectorAll(s: string): ArrayLike<unknown> } };
          const rgba = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
          const lum = (c: number[]) => {
            const [r, gr, b] = c.map((v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
            return 0.2126 * r! + 0.7152 * gr! + 0.0722 * b!;
          };
          return Math.min(
            ...Array.from(g.document.querySelectorAll('input[placeholder]'), (input) => {
              const bg = rgba(g.getComputedStyle(input).backgroundColor);
              const fg = rgba(g.getComputedStyle(input, '::placeholder').color);
              const alpha = fg[3] ?? 1; // a translucent grey is seen over the box
              const seen = [0, 1, 2].map((i) => fg[i]! * alpha + bg[i]! * (1 - alpha));
              const [hi, lo] = [lum(seen), lum(bg)].sort((x, y) => y - x);
              return (hi! + 0.05) / (lo! + 0.05);
            }),
          );
        });
      expect(await contrast()).toBeGreaterThanOrEqual(4.5);
      await p.click('#theme');
      expect(await contrast()).toBeGreaterThanOrEqual(4.5);

      // An error code, the longest the box suggests, is seen whole.
      await p.fill('input[name=failedStatus]', 'insufficient_quota');
      expect(await p.locator('input[name=failedStatus]').evaluate((input) => {
        const i = input as unknown as { scrollWidth: number; clientWidth: number };
        return i.scrollWidth <= i.clientWidth;
      })).toBe(true);
    } finally {
      await p.close();
    }
    expect(pageErrors).toEqual([]);
  });

  it('stays quiet in live mode while nothing changes, says Load more is busy, and tells an empty store and a server that never answers from no match', async () => {
    const memory = new MemoryLogStore();
    let fail = false;
    let hang = false;
    let slow = 0;
    const host = express();
    host.use('/logs/api', (_req, res, next) => {
      if (fail) res.status(500).json({ error: { message: 'The logs could not be read.', type: 'api_error', param: null, code: 'internal_error' } });
      else if (slow) setTimeout(next, slow);
      else if (!hang) next(); // hung: never answers
    });
    host.use('/logs', logsMiddleware({ store: memory, allowUnauthenticated: true, viewer: true }));
    const viewer = await listen(createServer(host));
    const p = await browser.newPage({ viewport: { width: 1600, height: 760 } });
    p.on('pageerror', (err) => pageErrors.push(err.message));
    let lists = 0;
    let pages = 0;
    let answered = 0;
    const isList = (url: string) => url.includes('/logs/api/requests?');
    p.on('request', (r) => {
      if (isList(r.url())) lists++;
      if (isList(r.url()) && r.url().includes('cursor=')) pages++;
    });
    p.on('requestfinished', (r) => void (isList(r.url()) && answered++));
    type Doc = { activeElement: { getAttribute(k: string): string | null; setAttribute(k: string, v: string): void; dataset: Record<string, string | undefined> } | null; getElementById(id: string): { click(): void } };
    type Win = { document: Doc; scrollY: number; scrollTo(x: number, y: number): void; changes: Record<string, number>; MutationObserver: new (cb: () => void) => { observe(n: unknown, o: object): void } };
    const live = () => p.evaluate(() => (globalThis as unknown as Win).document.getElementById('live').click()); // the focus stays where it is
    const changes = () => p.evaluate(() => ({ ...(globalThis as unknown as Win).changes }));
    const quiet = () => p.evaluate(() => void ((globalThis as unknown as Win).changes = { summary: 0, error: 0 }));
    const state = () =>
      p.evaluate(() => {
        const w = globalThis as unknown as Win;
        const a = w.document.activeElement;
        return { mark: a?.getAttribute('data-mark') ?? null, requestId: a?.dataset.requestId, scrollY: w.scrollY };
      });
    const tick = async () => {
      const before = answered;
      await p.clock.runFor(5_000);
      await until(() => answered > before);
      await p.waitForTimeout(50);
    };
    try {
      await p.clock.install();
      // No request logged yet is not "no match"; filters set, it is.
      await p.goto(`${viewer.url}/logs/`);
      await p.locator('td.empty', { hasText: 'No requests are logged yet.' }).waitFor();
      await p.fill('input[name=model]', 'gpt-4o');
      await p.press('input[name=model]', 'Enter');
      await p.locator('td.empty', { hasText: 'No requests match these filters.' }).waitFor();

      const now = Date.now();
      for (let i = 0; i < 60; i++) memory.write({ ...logs[0]!, requestId: `quiet-${i}`, traceId: `quiet-${i}`, startedAt: now - 1000 * (i + 1) });
      await p.click('#clear');
      await rowCount(p, 50);
      // The focused row scrolled out of view: a tick with nothing new leaves it, the scroll and the live regions alone.
      await p.locator('tr.row').nth(40).focus();
      await p.evaluate(() => {
        const w = globalThis as unknown as Win;
        w.document.activeElement!.setAttribute('data-mark', 'focused');
        w.scrollTo(0, 0);
        w.changes = { summary: 0, error: 0 };
        for (const id of ['summary', 'error']) new w.MutationObserver(() => void w.changes[id]!++).observe(w.document.getElementById(id), { childList: true, characterData: true, subtree: true });
      });
      await live();
      await tick();
      await tick();
      expect(await state()).toEqual({ mark: 'focused', requestId: 'quiet-40', scrollY: 0 });
      expect(await changes()).toEqual({ summary: 0, error: 0 });
      // The time of the last refresh is beside the status, not in it (it would be read out every 5 s).
      expect(await p.locator('#updated').textContent()).toMatch(/ · updated \d\d:\d\d:\d\d$/);
      expect(await p.locator('#summary').textContent()).not.toContain('updated');
      // A request comes in: its row is added, the focus stays on its request, and the page does not scroll to it.
      memory.write({ ...logs[0]!, requestId: 'quiet-new', traceId: 'quiet-new', startedAt: now });
      await tick();
      await rowCount(p, 51);
      expect(await state()).toEqual({ mark: null, requestId: 'quiet-40', scrollY: 0 });
      // The endpoint fails tick after tick: the alert is set once, not every 5 s.
      fail = true;
      await tick();
      await p.locator('#error.show', { hasText: 'The logs could not be read.' }).waitFor();
      await quiet();
      await tick();
      await tick();
      expect(await changes()).toEqual({ summary: 0, error: 0 });
      fail = false;
      await live();

      // A slow "Load more" says it is busy, and clicks meanwhile ask for nothing more.
      slow = 800;
      await p.click('#more');
      expect([await p.getAttribute('#more', 'aria-busy'), await p.getAttribute('#more', 'aria-disabled')]).toEqual(['true', 'true']);
      await p.click('#more', { force: true });
      await p.click('#more', { force: true });
      await rowCount(p, 61);
      expect(pages).toBe(1);
      expect(await p.getAttribute('#more', 'aria-busy')).toBeNull();
      slow = 0;

      // A server that never answers: after 30 s the search fails, and says why, instead of loading for good.
      hang = true;
      const asked = lists;
      await p.fill('input[name=model]', 'gpt-4o');
      await p.press('input[name=model]', 'Enter');
      await until(() => lists > asked);
      await p.clock.runFor(30_000);
      await p.locator('td.empty', { hasText: 'Could not load the logs: The server did not answer within 30 s.' }).waitFor({ timeout: 5000 });
      expect(await p.locator('#error').textContent()).toBe('The server did not answer within 30 s.');
    } finally {
      await p.close();
      await viewer.close();
    }
    expect(pageErrors).toEqual([]);
  });
  it('isolates values from events in the drawer: a right-to-left override in a model name or message reverses nothing else', async () => {
    const memory = new MemoryLogStore();
    const RLO = '\u202E';
    const model = `gpt-4o${RLO}`;
    const event: LogEvent = {
      traceId: 'bidi-1', requestId: 'req-bidi-1', configId: `cfg${RLO}`, startedAt: Date.now(), durationMs: 12, status: 503, stream: false, fallback: true, model,
      servedBy: null,
      attempts: [
        { target: 'targets[0]', provider: 'openai', model, status: 503, durationMs: 5, error: { code: 'upstream_error', message: `down${RLO} for now` }, upstreamError: { code: `over${RLO}loaded`, message: `try${RLO} later` } },
        { target: 'targets[1]', provider: 'azure-openai', model, status: 503, durationMs: 6, upstreamError: { code: null, message: `busy${RLO} too` } },
        // Another writer's shape: an object where a code goes is shown as JSON, and the drawer still opens.
        { target: 'targets[2]', provider: 'openai', model, status: 503, durationMs: 7, upstreamError: { code: { type: 'overloaded' } as unknown as string, message: 'busy' } },
      ],
      usage: null, costUsd: null,
    };
    memory.write(event);
    const host = express();
    host.use('/logs', logsMiddleware({ store: memory, allowUnauthenticated: true, viewer: true }));
    const viewer = await listen(createServer(host));
    const p = await browser.newPage({ viewport: { width: 1600, height: 760 } });
    p.on('pageerror', (err) => pageErrors.push(err.message));
    try {
      await p.goto(`${viewer.url}/logs/`);
      await p.locator('tr.row').first().click();
      await p.locator('#detail.open #attempts tbody tr').nth(2).waitFor();
      // Each value in a <bdi> of its own, the text around it outside: the status reads "· 503", not "305 ·".
      const h2 = p.locator('#detail-body h2');
      expect([await h2.locator('bdi').allTextContents(), await h2.textContent()]).toEqual([[model], `${model} · 503`]);
      const [modelBox, statusBox] = await h2.evaluate((node) => {
        type Rect = { left: number; right: number };
        type N = { firstChild: unknown; lastChild: unknown; ownerDocument: { createRange(): { selectNodeContents(n: unknown): void; getBoundingClientRect(): Rect } } };
        const h = node as unknown as N;
        const box = (n: unknown) => {
          const r = h.ownerDocument.createRange();
          r.selectNodeContents(n);
          const b = r.getBoundingClientRect();
          return { left: b.left, right: b.right };
        };
        return [box(h.firstChild), box(h.lastChild)];
      });
      expect(statusBox.left).toBeGreaterThanOrEqual(modelBox.right - 1);
      const errors = p.locator('#attempts td.err-text');
      expect(await errors.nth(0).locator('bdi').allTextContents()).toEqual(['upstream_error', `down${RLO} for now`, `over${RLO}loaded`, `try${RLO} later`]);
      expect(await errors.nth(1).locator('bdi').allTextContents()).toEqual([`busy${RLO} too`]);
      expect(await errors.nth(2).textContent()).toBe('{"type":"overloaded"}: busy');
      expect(await p.locator('#detail-body dd bdi').allTextContents()).toEqual(expect.arrayContaining([`cfg${RLO}`, model]));
    } finally {
      await p.close();
      await viewer.close();
    }
    expect(pageErrors).toEqual([]);
  });
});
