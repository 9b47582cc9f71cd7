import { parseCommand } from './args';

const USER = 'e1e7e000-0000-4000-8000-000000000001';

describe('parseCommand: argv → a command, help, or a usage error', () => {
  test.each([
    [['machines'], { name: 'machines', json: false }],
    [
      ['machines', '--state', 'running', '--tier', 'elite', '--region', 'ams', '--json'],
      { name: 'machines', state: 'running', tier: 'elite', region: 'ams', json: true },
    ],
    [['show', USER], { name: 'show', userId: USER, json: false }],
    [['show', USER, '--json'], { name: 'show', userId: USER, json: true }],
    [['stop', USER], { name: 'stop', userId: USER }],
    [['stop', USER, '--reason', 'abuse report'], { name: 'stop', userId: USER, reason: 'abuse report' }],
    [['force-stop', '--reason', ' stuck worker ', USER], { name: 'force-stop', userId: USER, reason: 'stuck worker' }],
    [['reconcile'], { name: 'reconcile', dryRun: false, json: false }],
    [
      ['reconcile', '--dry-run', '--json', '--min-age', '0s'],
      { name: 'reconcile', dryRun: true, json: true, minAge: '0s' },
    ],
    [['logs', USER], { name: 'logs', userId: USER, follow: false, lines: 100 }],
    [['logs', USER, '-f', '-n', '20'], { name: 'logs', userId: USER, follow: true, lines: 20 }],
  ])('%j', (argv, command) => {
    const parsed = parseCommand(argv);
    expect(parsed).toEqual({ kind: 'command', command: expect.objectContaining(command) });
  });

  test.each([[[]], [['help']], [['--help']], [['-h']], [['machines', '--help']], [['show', '-h']]])(
    '%j asks for help',
    (argv) => expect(parseCommand(argv)).toEqual({ kind: 'help' }),
  );

  test.each([
    [['nope'], 'unknown command "nope"'],
    [['machines', '--bogus'], "machines: Unknown option '--bogus'"],
    [['machines', '--state', 'asleep'], 'machines: --state must be one of provisioning, starting, running'],
    [['machines', 'extra'], 'machines: unexpected argument "extra"'],
    [['show'], 'show: needs a <userId>'],
    [['show', 'alice'], 'show: <userId> must be a user id (a UUID)'],
    [['show', USER, USER], `show: unexpected argument "${USER}"`],
    [['stop', USER, '--reason'], "stop: Option '--reason <value>' argument missing"],
    [['stop', USER, '--reason', '  '], 'stop: --reason must not be empty'],
    [['force-stop', USER], 'force-stop: needs --reason (why, for the audit trail)'],
    [['reconcile', '--min-age', 'soon'], 'reconcile: --min-age must be a duration like "10 minutes"'],
    [['reconcile', USER], `reconcile: unexpected argument "${USER}"`],
    [['logs', USER, '--lines', '0'], 'logs: --lines'],
    [['logs', USER, '--follow=yes'], 'logs:'],
  ])('%j is a usage error', (argv, message) => {
    const parsed = parseCommand(argv);
    expect(parsed.kind).toBe('usage');
    if (parsed.kind === 'usage') expect(parsed.message).toContain(message);
  });
});
