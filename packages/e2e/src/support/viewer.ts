/** What the viewer's browser tests share (playwright-core is the logs package's: a page is typed by what is used of it). */
type Page = { locator(selector: string): { count(): Promise<number> } };

/**
 * Waits until the table shows exactly `n` requests. Polls from Node through locators: the page's CSP forbids eval, so
 * a string predicate (`waitForFunction`) may be refused by the very page it checks.
 */
export async function rowCount(page: Page, n: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  let seen = -1;
  while (Date.now() < end) {
    seen = await page.locator('tr.row').count();
    if (seen === n) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`expected ${n} rows in the viewer, saw ${seen}`);
}
