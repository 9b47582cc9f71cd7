import { klinesQuerySchema } from '../market';
import { signalQuerySchema } from '../signals';
import { authErrors, body, json200, problem, queryParams, security } from './components';

const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }];
const noStore = { '501': problem('this server has no user store for traders') };

/** The caller's traders, their preview and validation, their signals, and the chart's candles. */
export const traderPaths = () => ({
  '/v1/traders': {
    get: {
      summary: 'My traders (and how many I may have)',
      security,
      responses: { '200': json200('TraderList', 'oldest first'), ...noStore, ...authErrors },
    },
    post: {
      summary: 'Create a trader; my running machine reloads its traders',
      security,
      requestBody: body('TraderCreate'),
      responses: {
        '201': {
          ...json200('Trader', 'created'),
          headers: { Location: { schema: { type: 'string' }, description: '/v1/traders/<id>' } },
        },
        '400': problem('invalid body; `errors` point at the field, e.g. definition.filter.all.0.op'),
        '409': problem('at the per-user limit of traders (API_MAX_TRADERS_PER_USER)'),
        ...noStore,
        ...authErrors,
      },
    },
  },
  '/v1/traders/{id}': {
    get: {
      summary: 'One of my traders',
      security,
      parameters: idParam,
      responses: {
        '200': json200('Trader', 'the trader'),
        '400': problem('not a UUID'),
        '404': problem('no such trader of mine'),
        ...noStore,
        ...authErrors,
      },
    },
    patch: {
      summary: 'Change name, definition or enabled (enable/disable); my running machine reloads',
      security,
      parameters: idParam,
      requestBody: body('TraderUpdate'),
      responses: {
        '200': json200('Trader', 'changed'),
        '400': problem('invalid body or id; `errors` point at the field'),
        '404': problem('no such trader of mine'),
        ...noStore,
        ...authErrors,
      },
    },
    delete: {
      summary: 'Delete a trader (and its signals); my running machine reloads',
      security,
      parameters: idParam,
      responses: {
        '204': { description: 'deleted' },
        '400': problem('not a UUID'),
        '404': problem('no such trader of mine'),
        ...noStore,
        ...authErrors,
      },
    },
  },
  '/v1/traders/preview': {
    post: {
      summary: 'How often a definition would have fired over the last closed candles (the runtime engine)',
      security,
      requestBody: body('TraderPreviewRequest'),
      responses: {
        '200': json200('TraderPreview', 'the firings, oldest first'),
        '400': problem('invalid body; `errors` point at the field'),
        '422': problem('Binance does not know the symbol'),
        '502': problem('Binance did not answer'),
        ...authErrors,
      },
    },
  },
  '/v1/traders/validate': {
    post: {
      summary: 'What POST /v1/traders would say of a body, without saving it (the editor, while typing)',
      security,
      requestBody: body('TraderCreate'),
      responses: {
        '200': json200('TraderValidation', '`valid`, or the errors at their fields'),
        ...authErrors,
      },
    },
  },
  '/v1/signals': {
    get: {
      summary: 'My signals, newest first, with the values that fired them and the AI note (paged)',
      security,
      parameters: queryParams(signalQuerySchema),
      responses: {
        '200': json200('SignalList', '`next` is the cursor of the next, older page'),
        '400': problem('invalid query; `errors` point at the parameter'),
        ...noStore,
        ...authErrors,
      },
    },
  },
  '/v1/market/klines': {
    get: {
      summary: 'Recent closed candles of one stream from Binance (the chart’s backfill; cached a few seconds)',
      security,
      parameters: queryParams(klinesQuerySchema),
      responses: {
        '200': json200('Klines', 'oldest first; the candle still forming is left out'),
        '400': problem('invalid query'),
        '422': problem('Binance does not know the symbol'),
        '502': problem('Binance did not answer'),
        ...authErrors,
      },
    },
  },
});
