import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createApiStack, type ApiStack } from './test-support/api-stack';

jest.setTimeout(180_000);

const SCREENSHOT = '/tmp/dashboard.png';

describe('the dashboard in Chromium, against the REAL machine runtime', () => {
  let api: ApiStack;
  let browser: BrowserContext;
  let page: Page;
  const profile = mkdtempSync(join(tmpdir(), 'ce-chromium-'));

  beforeAll(async () => {
    api = await createApiStack({ realRuntime: true });
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1100, height: 900 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  test('paste a token, start, see running and live frames from the machine, stop, see stopped', async () => {
    const userId = await api.createUser('elite');
    if (api.replay) {
      // A trader that fires on every closed 1m candle, so live signals show up within seconds.
      await api.stack.db.pool.query('insert into public.traders (user_id, name, definition) values ($1, $2, $3)', [
        userId,
        'BTC heartbeat',
        {
          symbols: ['BTCUSDT'],
          interval: '1m',
          fireOn: 'every',
          filter: { all: [{ left: { indicator: 'price' }, op: '>', right: 0 }] },
        },
      ]);
    } else {
      console.warn('SKIPPED (part): no recorded Binance data, so no trader and no live signals; frames still checked');
    }

    await page.goto(api.url);
    await expect(page.title()).resolves.toContain('Cloud machine');

    // A clear error first: a free user's token cannot start a machine, and the page says why.
    await page.fill('#token', await api.token(await api.createUser('free')));
    await page.click('#save-token');
    await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'no machine');
    await page.click('#start');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error')).toContain('elite tier');

    // The elite user's token (kept in localStorage across a reload).
    await page.click('#token-details summary'); // folded once a token is set
    await page.fill('#token', await api.token(userId));
    await page.click('#save-token');
    await page.reload();
    await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'no machine');
    expect(await page.isHidden('#error')).toBe(true);

    await page.click('#start');
    await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'running', undefined, {
      timeout: 90_000,
    });
    await page.waitForFunction(() => document.querySelector('#stream-status')?.textContent === 'live');
    // A frame straight from the real runtime (hello / state / metrics / signals / candles).
    await page.waitForFunction(() =>
      /"type":"(hello|state|metrics|signals|candles)"/.test(document.querySelector('#last-frame')?.textContent ?? ''),
    );
    await page.waitForFunction(() => /Healthy/.test(document.querySelector('#health')?.textContent ?? ''));
    if (api.replay) {
      await page.waitForSelector('#signals li .sym', { timeout: 60_000 });
      expect(await page.textContent('#signals li .sym')).toBe('BTCUSDT');
    }
    await page.waitForFunction(() => document.querySelector('#m-heap')?.textContent !== '—'); // a metrics frame
    const timeline = await page.$$eval('#timeline li .st', (els) => els.map((e) => e.textContent));
    expect(timeline).toEqual(['running', 'starting', 'provisioning']);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 }); // a phone
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1100, height: 900 });

    await page.click('#stop');
    await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'stopped', undefined, {
      timeout: 60_000,
    });
    expect(await page.textContent('#reason')).toBe('user_requested');
    await page.waitForFunction(() => document.querySelector('#stream-status')?.textContent !== 'live');
    expect(await page.isEnabled('#start')).toBe(true);
    expect(await page.textContent('#health')).toMatch(/not running/);
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-stopped.png'), fullPage: true });
  });
});
