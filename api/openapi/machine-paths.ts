import { timelineQuerySchema, uptimeQuerySchema } from '../timeline';
import { authErrors, json200, problem, queryParams, ref, security } from './components';

/** The caller's machine: provision, status, stop, the WebSocket (`machine-routes.ts`). */
export const machinePaths = () => ({
  '/v1/machines': {
    post: {
      summary: 'Provision my machine (idempotent)',
      security,
      requestBody: { required: false, content: { 'application/json': { schema: ref('ProvisionRequest') } } },
      responses: {
        '202': {
          ...json200('ProvisionResponse', 'the workflow owning the machine runs'),
          headers: { Location: { schema: { type: 'string' }, description: '/v1/machines/me' } },
        },
        '400': problem('malformed JSON or invalid body, or a region not offered (GET /v1/options)'),
        '402': problem('payment overdue and its grace period has ended ("payment overdue since …, grace ended …")'),
        '403': problem('not on the elite tier'),
        '409': problem('the machine is stopping'),
        ...authErrors,
      },
    },
  },
  '/v1/machines/me': {
    get: {
      summary: 'The status of my machine',
      security,
      responses: {
        '200': json200('MachineStatus', 'as recorded at its last transition (checked against its running workflow)'),
        '404': problem('you never had a machine'),
        ...authErrors,
      },
    },
  },
  '/v1/machines/me/stop': {
    post: {
      summary: 'Stop my machine',
      security,
      responses: {
        '202': json200('StopResponse', 'stop requested; poll the status until `stopped`'),
        '404': problem('you never had a machine'),
        '409': problem('your machine is not running'),
        ...authErrors,
      },
    },
  },
  '/v1/machines/me/stream': {
    get: {
      summary: 'WebSocket to my machine (hello, state, metrics, signal, candle messages)',
      description:
        'Browsers authenticate with `Sec-WebSocket-Protocol: bearer, <jwt>` (the server answers `bearer`), ' +
        'others with `Authorization`. Closes with 4404 when no machine runs, 4429 above the per-user limit, ' +
        '4502 when the machine cannot be reached, 4503 when it goes away.',
      security,
      responses: {
        '101': { description: 'switching protocols' },
        '426': problem('not a WebSocket upgrade request'),
        ...authErrors,
      },
    },
  },
});

/** What the page reads around the machine: its status events, timeline and uptime, the start form's options. */
export const machinePagePaths = () => ({
  '/v1/machines/me/events': {
    get: {
      summary: 'My machine’s status as server-sent events: at once and on every change',
      description:
        '`event: status` carries what GET /v1/machines/me answers (`null`: no machine); `event: error` a ' +
        'failed read (the stream stays open); `event: expired` ends the stream when the token expires. ' +
        'Every open page of a user shares one status poller; the connection counts once against the ' +
        'status budget. Send the token as `Authorization: Bearer` (fetch; EventSource cannot).',
      security,
      responses: {
        '200': { description: 'an event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        '429': problem('too many open event streams for this user, or too many requests'),
        '401': problem('missing, expired or invalid access token'),
      },
    },
  },
  '/v1/machines/me/timeline': {
    get: {
      summary: 'My machine’s and my billing’s history in one list, newest first (paged)',
      description:
        'Transitions, billing events (applied, and ignored ones with why), self-heals and their causes, ' +
        'image rollouts and operator actions. Every entry has a reason code (docs/technical-description.md, ' +
        '"Reason codes") and a sentence. Only the caller’s own rows exist here (RLS).',
      security,
      parameters: queryParams(timelineQuerySchema),
      responses: {
        '200': json200('TimelinePage', '`next` is the cursor of the next, older page'),
        '400': problem('invalid query; `errors` point at the parameter'),
        '501': problem('this server has no user store'),
        ...authErrors,
      },
    },
  },
  '/v1/machines/me/uptime': {
    get: {
      summary: 'My uptime ledger: minutes per UTC day entitled, running healthy, and down by cause; the SLO',
      description:
        'Down by cause: ours (unhealthy, self-heal, our bugs), Fly (host failure, machine gone, API outage), ' +
        'stopped by the user, billing (downgrade, payment overdue). Each calendar month against ' +
        'UPTIME_SLO_PERCENT (only ours and Fly count against it) with the credit owed. At most 93 days.',
      security,
      parameters: queryParams(uptimeQuerySchema.in),
      responses: {
        '200': json200('Uptime', 'one entry per day of the range, totals, months'),
        '400': problem('invalid dates or range; `errors` point at the parameter'),
        '501': problem('this server has no user store'),
        ...authErrors,
      },
    },
  },
  '/v1/options': {
    get: {
      summary: 'Regions and CPU priorities a machine may start with, and the defaults',
      responses: { '200': json200('Options', 'from API_REGIONS and the machine sizes') },
    },
  },
});
