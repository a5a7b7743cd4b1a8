// Debian's headless chromium driven by playwright-core (never `npx playwright install`):
// a fresh profile, no background traffic, and every request leaving the loopback refused and
// recorded, so a test sees whether a page needs the internet.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CAREBILL_CHROMIUM || '/usr/bin/chromium';

export async function withBrowser(run) {
  const profile = mkdtempSync(join(tmpdir(), 'carebill-chromium-'));
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ];
  // A fresh --user-data-dir, which playwright takes as the persistent context's profile.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args, timeout: 60_000,
  });
  const outside = [];
  try {
    await context.route('**/*', (route) => {
      const { hostname } = new URL(route.request().url());
      if (['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) return route.continue();
      outside.push(route.request().url());
      return route.abort();
    });
    const page = await context.newPage();
    page.setDefaultTimeout(60_000);
    const console_ = [];
    page.on('console', (message) => console_.push(`${message.type()}: ${message.text()}`));
    page.on('pageerror', (error) => console_.push(`pageerror: ${error.message}`));
    const result = await run(page);
    return { ...result, outside, console: console_ };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

export function print(result) {
  process.stdout.write(JSON.stringify(result));
}
