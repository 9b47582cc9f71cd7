import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createApiStack, type ApiStack } from './test-support/api-stack';

jest.setTimeout(180_000);

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

describe('the dashboard in Chromium, against the REAL machine runtime', () => {
  let api: ApiStack;
  let browser: BrowserContext;
  let page: Page;
  const profile = mkdtempSync(join(tmpdir(), 'ce-chromium-'));
  // Kept after the run (its path is logged) so the screenshots can be looked at.
  const shots = mkdtempSync(join(tmpdir(), 'ce-dashboard-shots-'));
  const shoot = async (name: string, size = DESKTOP) => {
    await page.setViewportSize(size);
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
    await page.setViewportSize(DESKTOP);
  };

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
      viewport: DESKTOP,
    });
    page = browser.pages()[0] ?? (await browser.newPage());
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
    rmSync(profile, { recursive: true, force: true });
    console.warn(`dashboard screenshots in ${shots}`);
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

    // The start form's choices come from GET /v1/options, its defaults preselected.
    const options = (await api.call('GET', '/v1/options')).json as {
      regions: { code: string }[];
      defaults: { region: string; cpuPriority: string };
    };
    await page.waitForSelector('#start-region:not([disabled])');
    expect(await page.$$eval('#start-region option', (els) => els.map((e) => (e as HTMLOptionElement).value))).toEqual(
      options.regions.map((r) => r.code),
    );
    expect(await page.inputValue('#start-region')).toBe(options.defaults.region);
    expect(await page.inputValue('#start-cpu')).toBe(options.defaults.cpuPriority);

    // The elite user's token (kept in localStorage across a reload).
    await page.click('#token-details summary'); // folded once a token is set
    await page.fill('#token', await api.token(userId));
    await page.click('#save-token');
    await page.reload();
    await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'no machine');
    expect(await page.isHidden('#error')).toBe(true);

    // Traders: the seeded one is listed; a bad symbol is an error next to its field; create, disable, delete.
    const traderNames = () => page.$$eval('#traders .trader-name', (els) => els.map((e) => e.textContent));
    if (api.replay) await page.waitForSelector('#traders .trader-name:text("BTC heartbeat")');
    else await page.waitForSelector('#traders li.muted:text("No traders yet.")');
    await page.click('#trader-new summary');
    await page.fill('#t-name', 'ETH dip');
    await page.fill('#t-symbols', 'ETH-USD');
    await page.selectOption('#t-interval', '5m');
    await page.click('#trader-create');
    await page.waitForFunction(() =>
      /Binance symbol/.test(document.querySelector('#t-symbols-error')?.textContent ?? ''),
    );
    expect(await page.getAttribute('#t-symbols', 'aria-invalid')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('t-symbols');
    expect(await page.textContent('#t-name-error')).toBe('');
    await page.fill('#t-symbols', 'ethusdt');
    await page.click('#trader-create');
    await page.waitForSelector('#traders .trader-name:text("ETH dip")');
    expect(await page.isHidden('#t-symbols-error')).toBe(true);
    const eth = page.locator('#traders li', { hasText: 'ETH dip' });
    expect(await eth.textContent()).toContain('ETHUSDT · 5m');
    expect(await eth.locator('input[role=switch]').isChecked()).toBe(true);
    await eth.locator('input[role=switch]').click(); // disable
    await page.waitForFunction(() =>
      Array.from(document.querySelectorAll('#traders li')).some(
        (li) => /ETH dip/.test(li.textContent ?? '') && /off$/.test(li.querySelector('.switch')?.textContent ?? ''),
      ),
    );
    const stored = (await api.call('GET', '/v1/traders', { token: await api.token(userId) })).json as {
      traders: { name: string; enabled: boolean }[];
    };
    expect(stored.traders.find((t) => t.name === 'ETH dip')?.enabled).toBe(false);
    // Delete asks first: Escape keeps it, Delete trader removes it.
    await eth.locator('button', { hasText: 'Delete' }).click();
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-title')).toContain('ETH dip');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#confirm', { state: 'hidden' });
    expect(await traderNames()).toContain('ETH dip');
    await eth.locator('button', { hasText: 'Delete' }).click();
    await page.click('#confirm-ok');
    await page.waitForFunction(() => !/ETH dip/.test(document.querySelector('#traders')?.textContent ?? ''));
    expect(await traderNames()).toEqual(api.replay ? ['BTC heartbeat'] : []);

    // Start, in the preselected region; the step line says where the start is.
    await page.evaluate(() => {
      const w = window as unknown as { steps: string[] };
      w.steps = [];
      const step = document.querySelector('#step')!;
      new MutationObserver(() => w.steps.push(step.textContent ?? '')).observe(step, { childList: true });
    });
    await page.click('#start');
    await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'running', undefined, {
      timeout: 90_000,
    });
    const steps = await page.evaluate(() => (window as unknown as { steps: string[] }).steps);
    expect(steps.some((t) => /^Step [12] of 3: /.test(t))).toBe(true);
    expect(await page.textContent('#region')).toBe(options.defaults.region);
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
    await shoot('running-desktop');
    await shoot('running-phone', PHONE);

    // Stop asks first: focus moves into the dialog, Escape and Cancel keep the machine running.
    await page.click('#stop');
    await page.waitForSelector('#confirm[open]');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('confirm-cancel');
    await shoot('stop-confirm-phone', PHONE);
    await page.keyboard.press('Escape');
    await page.waitForSelector('#confirm', { state: 'hidden' });
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('stop'); // focus back
    await page.click('#stop');
    await page.click('#confirm-cancel');
    await page.waitForTimeout(2500); // a poll or so
    expect(await page.textContent('#state')).toBe('running');
    expect((await api.call('GET', '/v1/machines/me', { token: await api.token(userId) })).json.state).toBe('running');

    await page.click('#stop');
    await page.click('#confirm-ok');
    await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'stopped', undefined, {
      timeout: 60_000,
    });
    expect(await page.textContent('#reason')).toBe('user_requested');
    expect(await page.textContent('#step')).toBe('Stopped because you asked to stop it.');
    await page.waitForFunction(() => document.querySelector('#stream-status')?.textContent !== 'live');
    expect(await page.isEnabled('#start')).toBe(true);
    expect(await page.textContent('#health')).toMatch(/not running/);
    await shoot('stopped-desktop');

    // The billing banner, from the status's payment fields (the answer rewritten in the browser).
    const graceEnds = new Date(Date.now() + 3 * 86_400_000).toISOString();
    await page.route('**/v1/machines/me', async (route) => {
      const res = await route.fetch();
      const body = { ...(await res.json()), paymentState: 'overdue', paymentOverdueSince: new Date().toISOString() };
      await route.fulfill({ response: res, json: { ...body, paymentGraceEndsAt: graceEnds } });
    });
    await page.click('#token-details summary');
    await page.click('#save-token'); // polls now
    await page.waitForSelector('#billing:not([hidden])');
    expect(await page.textContent('#billing')).toMatch(/^Payment overdue since .*grace period ends at/);
    await shoot('billing-phone', PHONE);
    await page.unroute('**/v1/machines/me');
  });
});
