// Opens the test's front-end page (served from another localhost port) and reports what the
// page could do against CareBill: log in, query, subscribe (see tests/browser/frontend.html).
// Usage: node browser/frontend.mjs <page url>
import { print, withBrowser } from './chromium.mjs';

const [pageUrl] = process.argv.slice(2);
print(await withBrowser(async (page) => {
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.carebill && window.carebill.done, null, { timeout: 90_000 });
  return { page: await page.evaluate(() => window.carebill) };
}));
