// GraphiQL as a developer uses it, offline: the editor renders from CareBill's own assets, a
// query runs with the token in the Headers editor, and a subscription receives an alert that
// a mutation (sent from here once the subscription is live) produces.
// Usage: node browser/graphiql.mjs <graphql url> <token> <mutation json> <screenshot path>
import { print, withBrowser } from './chromium.mjs';

const [url, token, mutationJson, screenshot] = process.argv.slice(2);

function response(page) {
  return page.evaluate(
    () => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue(),
  );
}

// Opens GraphiQL with `query` in its editor, as a developer's last session left it (GraphiQL
// keeps the editor in localStorage; text set into the editor directly reaches GraphiQL's state
// only after a debounce, and Run would send the previous text).
async function open(page, query) {
  await page.evaluate((text) => localStorage.setItem('graphiql:query', text), query);
  await page.reload({ waitUntil: 'networkidle' });
  await page.waitForFunction(
    (text) => document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror.getValue() === text,
    query,
  );
}

// Presses Run until the response pane shows `expected`.
async function run(page, query, expected) {
  await open(page, query);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    await page.click('.graphiql-execute-button');
    try {
      await page.waitForFunction(
        (text) => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue().includes(text),
        expected,
        { timeout: 5_000 },
      );
      return response(page);
    } catch (error) {
      if (!(error instanceof Error && error.name === 'TimeoutError')) throw error;
    }
  }
  throw new Error(`GraphiQL never showed ${expected}`);
}

print(await withBrowser(async (page) => {
  await page.addInitScript((headers) => {
    localStorage.setItem('graphiql:headers', headers);
  }, JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2));
  await page.goto(url, { waitUntil: 'networkidle' });
  await page.waitForSelector('.graphiql-query-editor .CodeMirror');
  await page.waitForSelector('.graphiql-execute-button');

  const query = await run(page, '{ viewer { role user { email } } }', '"role"');

  // The subscription is live once the server counts one more subscriber; then an invoice is sent.
  const health = new URL('/healthz', url).toString();
  const subscribers = async () => (await (await fetch(health)).json()).alertSubscribers;
  const before = await subscribers();
  await open(page, 'subscription { invoiceAlerts { kind invoice { number } } }');
  await page.click('.graphiql-execute-button');
  const deadline = Date.now() + 60_000;
  while ((await subscribers()) <= before) {
    if (Date.now() > deadline) throw new Error('the subscription never started');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const sent = await (await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: mutationJson,
  })).json();
  await page.waitForFunction(
    () => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue().includes('INVOICE_SENT'),
    null,
    { timeout: 60_000 },
  );
  const subscription = await response(page);
  await page.screenshot({ path: screenshot });
  return { query, subscription, sent };
}));
