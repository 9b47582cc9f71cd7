import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/**
 * The embedded database of local mode: PGlite (Postgres compiled to WebAssembly) persisted to a
 * folder and served over the Postgres wire protocol, so the worker, the API and the machines connect
 * with the same `pg` driver as to a real server. Runs as its own process (`startPgliteServer`).
 */
export async function startPgliteServer(opts: { dataDir?: string; host?: string; port: number }) {
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const db = await PGlite.create(opts.dataDir ?? 'memory://');
  const server = new PGLiteSocketServer({ db, host: opts.host ?? '127.0.0.1', port: opts.port, maxConnections: 64 });
  await server.start();
  return {
    url: `postgres://postgres@${opts.host ?? '127.0.0.1'}:${opts.port}/postgres`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}

if (require.main === module) {
  const port = Number(process.env.PGLITE_PORT ?? 5433);
  const dataDir = process.env.PGLITE_DATA_DIR || undefined;
  startPgliteServer({ port, dataDir })
    .then((srv) => {
      // The parent process waits for this line to know the server is ready.
      console.warn(`pglite ready ${srv.url}`);
      const stop = () => void srv.stop().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    })
    .catch((err: unknown) => {
      console.error('pglite failed to start:', err);
      process.exit(1);
    });
}
