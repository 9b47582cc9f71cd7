import { count, formatAge, formatInstant, formatPairs, formatTable, formatWhen, section, toJson } from './table';

describe('formatTable', () => {
  const columns = [
    { header: 'USER', value: (r: { u: string; n: number | null }) => r.u },
    {
      header: 'N',
      value: (r: { u: string; n: number | null }) => (r.n === null ? null : String(r.n)),
      align: 'right' as const,
    },
    { header: 'NOTE', value: () => '' },
  ];

  test('aligns columns two spaces apart, right-aligns numbers, shows empty values as "-", no trailing spaces', () => {
    expect(
      formatTable(columns, [
        { u: 'alice', n: 7 },
        { u: 'bo', n: 1234 },
        { u: 'carol-long', n: null },
      ]),
    ).toBe(['USER           N  NOTE', 'alice          7  -', 'bo          1234  -', 'carol-long     -  -'].join('\n'));
  });

  test('no rows: the header alone', () => {
    expect(formatTable(columns, [])).toBe('USER  N  NOTE');
  });

  test('a cell is one line: newlines and tabs become spaces', () => {
    expect(formatTable([{ header: 'X', value: (r: string) => r }], ['a\n\tb'])).toBe('X\na b');
  });
});

describe('formatPairs and section', () => {
  test('values line up after the longest key; null is "-"', () => {
    expect(
      formatPairs([
        ['user', 'u1'],
        ['last healthy', null],
      ]),
    ).toBe('user          u1\nlast healthy  -');
  });
  test('a section without a body says so', () => {
    expect(section('Fly machines', null)).toBe('Fly machines\n  (none)');
    expect(section('T', '  x')).toBe('T\n  x');
  });
});

describe('instants and ages', () => {
  test('formatInstant: UTC to the second; null stays null, junk stays as it is', () => {
    expect(formatInstant('2026-06-01T10:00:00.123+02:00')).toBe('2026-06-01 08:00:00Z');
    expect(formatInstant(null)).toBeNull();
    expect(formatInstant('soon')).toBe('soon');
  });

  test.each([
    [0, '0s'],
    [-5_000, '0s'],
    [45_900, '45s'],
    [12 * 60_000, '12m'],
    [(3 * 60 + 5) * 60_000, '3h05m'],
    [47 * 3_600_000, '47h00m'],
    [(2 * 24 + 4) * 3_600_000, '2d04h'],
  ])('formatAge(%d) = %s', (ms, text) => expect(formatAge(ms)).toBe(text));

  test('formatWhen: the instant and how long ago', () => {
    const now = Date.parse('2026-06-01T10:12:00Z');
    expect(formatWhen('2026-06-01T10:00:00Z', now)).toBe('2026-06-01 10:00:00Z (12m ago)');
    expect(formatWhen(null, now)).toBeNull();
  });

  test('count: singular for one', () => {
    expect([count(0, 'row'), count(1, 'row'), count(2, 'Fly machine')]).toEqual(['0 rows', '1 row', '2 Fly machines']);
  });

  test('toJson: pretty, with a final newline', () => {
    expect(toJson({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}\n');
  });
});
