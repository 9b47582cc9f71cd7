import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { describeWithData } from '../test/kit/data';
import { createApiStack, type ApiStack } from './test-support/api-stack';

jest.setTimeout(240_000);

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

/** RSI and the EMA are drawn; `every` with a rising close fires on about half the candles. */
const definition = (op: string) => ({
  symbols: ['BTCUSDT'],
  interval: '1m',
  fireOn: 'every',
  filter: {
    all: [
      { left: { indicator: 'change', period: 1 }, op, right: 0 },
      { left: { indicator: 'rsi', period: 14 }, op: '<', right: 101 },
      { left: { indicator: 'price', field: 'close' }, op: '>', right: { indicator: 'ema', period: 5 } },
    ],
  },
});

// The trader's whole path through the page, on the real runtime fed by the recorded klines (one 1m
// candle a second): dev sign-in, write a trader in the JSON editor (a mistake shown and fixed on the way), preview
// it, Start, candles on the chart with the trader's indicators, a signal in the list and its marker,
// the signal's candle on the chart, Stop with a confirmation. Keyboard only where a person would use it.
describeWithData('the trader’s page in Chromium: editor → preview → Start → chart → signal → Stop', () => {
  let api: ApiStack;
  let browser: BrowserContext;
  let page: Page;
  const profile = mkdtempSync(join(tmpdir(), 'ce-chromium-'));
  const shots = mkdtempSync(join(tmpdir(), 'ce-market-shots-'));
  const shoot = async (name: string, size = DESKTOP) => {
    await page.setViewportSize(size);
    await page.waitForTimeout(300); // the chart redraws on resize (autoSize)
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
    await page.setViewportSize(DESKTOP);
  };
  const statusReads: string[] = [];

  beforeAll(async () => {
    // Dev sign-in is for local stacks only: FLY_API_URL names fly-local (the API's Fly client is the stack's).
    api = await createApiStack({
      realRuntime: true,
      env: { API_DEV_SIGN_IN: 'true', FLY_API_URL: 'http://127.0.0.1:4280/v1' },
    });
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      viewport: DESKTOP,
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/v1/machines/me') statusReads.push(new Date().toISOString());
    });
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
    rmSync(profile, { recursive: true, force: true });
    console.warn(`trader's page screenshots in ${shots}`);
  });

  test('the whole path, desktop and phone', async () => {
    const userId = await api.createUser('elite');
    await page.goto(api.url);
    // Signed in the way a local trader is: the labelled dev sign-in, by keyboard.
    const me = page.getByRole('button', { name: `Sign in as ${userId}@example.test (elite)` });
    await me.focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /No traders yet/.test(document.querySelector('#traders')?.textContent ?? ''));

    // The editor, by keyboard: its summary takes focus and Enter opens it.
    await page.focus('#trader-json summary');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => (document.querySelector('#trader-json') as HTMLDetailsElement).open);
    await page.fill('#j-name', 'Rising above EMA(5)');
    await page.fill('#j-definition', JSON.stringify(definition('>>'), null, 2));
    await page.waitForFunction(() => /filter\.all\.0\.op/.test(document.querySelector('#j-errors')?.textContent ?? ''));
    expect(await page.getAttribute('#j-definition', 'aria-invalid')).toBe('true');
    await page.fill('#j-definition', '{ "symbols": [');
    await page.waitForFunction(() => /not JSON/.test(document.querySelector('#j-errors')?.textContent ?? ''));
    await page.fill('#j-definition', JSON.stringify(definition('>'), null, 2));
    await page.waitForFunction(() => /^Valid/.test(document.querySelector('#j-status')?.textContent ?? ''));

    await page.click('#j-preview');
    await page.waitForFunction(() =>
      /Would have fired \d+ times over the last 500 candles of BTCUSDT 1m/.test(
        document.querySelector('#j-preview-result')?.textContent ?? '',
      ),
    );
    const previewText = (await page.textContent('#j-preview-result .preview-summary'))!;
    expect(Number(/fired (\d+) times/.exec(previewText)![1])).toBeGreaterThan(50);
    await shoot('editor-desktop');
    await shoot('editor-phone', PHONE);
    await page.focus('#j-save');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() =>
      /Rising above EMA\(5\)/.test(document.querySelector('#traders')?.textContent ?? ''),
    );

    // The chart shows the trader's stream before the machine runs (the backfill), with its indicators.
    await page.waitForFunction(() => Number((document.querySelector('#chart') as HTMLElement).dataset.bars) >= 200);
    expect(await page.getAttribute('#chart', 'data-stream')).toBe('BTCUSDT|1m');
    expect(await page.textContent('#chart-status')).toMatch(/change:1.*rsi:14.*ema:5|ema:5/);
    const barsBefore = Number(await page.getAttribute('#chart', 'data-bars'));

    await page.click('#start');
    await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'running', undefined, {
      timeout: 90_000,
    });
    await page.waitForFunction(() => document.querySelector('#stream-status')?.textContent === 'live');
    // The stream's closed candles land on the chart, and signals come with their markers.
    await page.waitForFunction(
      (before) => Number((document.querySelector('#chart') as HTMLElement).dataset.bars) > before,
      barsBefore,
      { timeout: 60_000 },
    );
    await page.waitForSelector('#signals .signal-button', { timeout: 60_000 });
    await page.waitForFunction(() => Number((document.querySelector('#chart') as HTMLElement).dataset.markers) > 0);
    const first = page.locator('#signals .signal-button').first();
    expect(await first.textContent()).toMatch(/BTCUSDT.*1m.*Rising above EMA\(5\)/);
    expect(await first.locator('.signal-values code').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^change:1 /), expect.stringMatching(/^ema:5 /)]),
    );

    // Running: the status arrives as events; the page does not poll it.
    const readsBefore = statusReads.length;
    await page.waitForTimeout(5_000);
    expect(statusReads.length - readsBefore).toBe(0);

    // A signal, chosen by keyboard, shows its candle on the chart.
    await first.focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => (document.querySelector('#chart') as HTMLElement).dataset.selected !== undefined);
    await shoot('running-desktop');
    await shoot('running-phone', PHONE);

    await page.click('#stop');
    await page.waitForSelector('#confirm[open]');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('confirm-cancel');
    await page.click('#confirm-ok');
    await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'stopped', undefined, {
      timeout: 60_000,
    });
    await shoot('stopped-phone', PHONE);
  });
});
