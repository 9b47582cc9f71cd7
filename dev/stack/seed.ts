import pg from 'pg';

/** The users `npm start` seeds: one elite (gets a machine) and one free (gets a 403), with sample traders. */
export const ELITE_USER_ID = 'e1e7e000-0000-4000-8000-000000000001';
export const FREE_USER_ID = 'f4ee0000-0000-4000-8000-000000000002';

const sampleTraders = [
  {
    // The demo's first signal within a minute: with the replay at 5× a 1m candle closes every 12 s, and
    // about half of them close green. Delete or disable it in the page once you have seen one.
    name: 'Demo: every green 1m candle on BTC (fires often)',
    definition: {
      symbols: ['BTCUSDT'],
      interval: '1m',
      fireOn: 'every',
      filter: { all: [{ left: { indicator: 'change', period: 1 }, op: '>', right: 0 }] },
    },
  },
  {
    name: 'BTC momentum: close crosses above EMA 20 (1m)',
    definition: {
      symbols: ['BTCUSDT'],
      interval: '1m',
      filter: {
        all: [
          { left: { indicator: 'price', field: 'close' }, op: 'crossesAbove', right: { indicator: 'ema', period: 20 } },
        ],
      },
    },
  },
  {
    name: 'ETH oversold: RSI 14 below 35 (5m)',
    definition: {
      symbols: ['ETHUSDT'],
      interval: '5m',
      filter: { all: [{ left: { indicator: 'rsi', period: 14 }, op: '<', right: 35 }] },
    },
  },
  {
    name: 'Volume spike with a green candle (1m)',
    definition: {
      symbols: ['BTCUSDT'],
      interval: '1m',
      filter: {
        all: [
          { left: { indicator: 'volumeRatio', period: 20 }, op: '>', right: 2.5 },
          { left: { indicator: 'change', period: 1 }, op: '>', right: 0 },
        ],
      },
    },
  },
];

/** Idempotent: a second `npm start` finds the users and traders already there. */
export async function seedDevUsers(databaseUrl: string) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (const [id, tier, email] of [
      [ELITE_USER_ID, 'elite', 'elite@example.test'],
      [FREE_USER_ID, 'free', 'free@example.test'],
    ] as const) {
      await client.query('insert into auth.users (id, email) values ($1, $2) on conflict (id) do nothing', [id, email]);
      await client.query(
        'insert into public.profiles (id, subscription_tier) values ($1, $2) on conflict (id) do nothing',
        [id, tier],
      );
      // Once per user: traders the user deleted or changed stay so at the next `npm start`.
      const { rows } = await client.query('select count(*)::int as n from public.traders where user_id = $1', [id]);
      if (rows[0].n > 0) continue;
      for (const t of sampleTraders) {
        await client.query('insert into public.traders (user_id, name, definition) values ($1, $2, $3)', [
          id,
          t.name,
          JSON.stringify(t.definition),
        ]);
      }
    }
  } finally {
    await client.end();
  }
}
