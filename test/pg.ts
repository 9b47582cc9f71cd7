import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../store/migrate';
import { createPostgresStore, type PostgresStore } from '../store/postgres';
import type { SubscriptionTier } from '../store/types';
import { sleep } from './kit/wait';

export const TEMPLATE_DB = 'ce_template';

export interface TestDatabase {
  /** Connection string of this test's own database (a clone of the migrated template). */
  url: string;
  store: PostgresStore;
  pool: pg.Pool;
  /** Creates an `auth.users` row and its profile; returns the user id. */
  createUser(tier?: SubscriptionTier): Promise<string>;
  drop(): Promise<void>;
}

function adminUrl() {
  const url = process.env.TEST_PG_ADMIN_URL;
  if (!url)
    throw new Error('TEST_PG_ADMIN_URL is not set: run the tests with `npm test` (Jest global setup starts Postgres)');
  return url;
}

/** A fresh, migrated database for one test file (or one test), on the run's real Postgres. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`create database ${name} template ${TEMPLATE_DB}`);
        break;
      } catch (err) {
        // Two workers cloning the template at once: Postgres says it is "being accessed"; try again.
        if (attempt > 20 || !/being accessed/.test((err as Error).message)) throw err;
        await sleep(100 + Math.random() * 200);
      }
    }
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl());
  u.pathname = `/${name}`;
  const url = u.toString();
  const store = createPostgresStore({ connectionString: url, max: 5 });
  return {
    url,
    store,
    pool: store.pool,
    async createUser(tier = 'elite') {
      const id = randomUUID();
      await store.pool.query('insert into auth.users (id, email) values ($1, $2)', [id, `${id}@example.test`]);
      await store.pool.query('insert into public.profiles (id, subscription_tier) values ($1, $2)', [id, tier]);
      return id;
    },
    async drop() {
      await store.close();
      const a = new pg.Client({ connectionString: adminUrl() });
      await a.connect();
      try {
        await a.query(`drop database if exists ${name} with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** Migrations are applied once into a template database; each test file clones it (fast, isolated). */
export async function createTemplate(adminUrl: string) {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${TEMPLATE_DB}`);
    await admin.query(`create database ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${TEMPLATE_DB}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await migrate(client);
  } finally {
    await client.end();
  }
}
