import { json200 } from './components';

/** What operators and platforms read (`ops-routes.ts`), and the dashboard page. */
export const opsPaths = () => ({
  '/healthz': {
    get: {
      summary: 'Liveness, with Temporal and store reachability',
      responses: { '200': json200('Health', 'alive') },
    },
  },
  '/metrics': {
    get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text exposition format' } } },
  },
  '/': { get: { summary: 'The dashboard page', responses: { '200': { description: 'HTML' } } } },
});
