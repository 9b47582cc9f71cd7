import { appendFileSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { StateJournal } from './journal';
import { tempDataDir } from './test-helpers';

type Rec = { id: string; v: number };
const data = tempDataDir();
afterAll(() => data.remove());

let n = 0;
/** A journal over a fresh directory, with the records it holds kept in a map (as fly-local keeps its machines). */
function fresh(minCompactLines = 1000) {
  const dir = `${data.dir}/${++n}`;
  mkdirSync(dir);
  const journal = new StateJournal<Rec>(dir, { minCompactLines });
  const all = new Map<string, Rec>();
  const put = (r: Rec) => {
    all.set(r.id, r);
    journal.put(r, () => all.values(), all.size);
  };
  return { dir, journal, all, put, reopen: () => new StateJournal<Rec>(dir).load() };
}

const sorted = (rs: Rec[]) => [...rs].sort((a, b) => a.id.localeCompare(b.id));

test('changes are appended one line each and replayed in order: the last version of a record wins', () => {
  const j = fresh();
  j.put({ id: 'a', v: 1 });
  j.put({ id: 'b', v: 1 });
  j.put({ id: 'a', v: 2 });
  const lines = readFileSync(j.journal.journalPath, 'utf8').trim().split('\n');
  expect(lines).toEqual(['{"put":{"id":"a","v":1}}', '{"put":{"id":"b","v":1}}', '{"put":{"id":"a","v":2}}']);
  expect(sorted(j.reopen().records)).toEqual([
    { id: 'a', v: 2 },
    { id: 'b', v: 1 },
  ]);
});

test('a torn last line (a kill mid-write) is skipped; everything before it is kept', () => {
  const j = fresh();
  j.put({ id: 'a', v: 1 });
  j.put({ id: 'b', v: 1 });
  appendFileSync(j.journal.journalPath, '{"put":{"id":"a","v":'); // no newline: cut short
  const loaded = j.reopen();
  expect(sorted(loaded.records)).toEqual([
    { id: 'a', v: 1 },
    { id: 'b', v: 1 },
  ]);
  expect(loaded).toMatchObject({ replayed: 2, skipped: 1 });
});

test('compaction: past max(floor, 2 × records) lines the state becomes a snapshot and the journal starts empty', () => {
  const j = fresh(10);
  for (let i = 0; i < 11; i++) j.put({ id: 'a', v: i });
  expect(readFileSync(j.journal.journalPath, 'utf8')).toBe(''); // the 11th line compacted
  expect(JSON.parse(readFileSync(j.journal.snapshotPath, 'utf8'))).toEqual({
    version: 1,
    machines: [{ id: 'a', v: 10 }],
  });
  j.put({ id: 'b', v: 0 });
  expect(sorted(j.reopen().records)).toEqual([
    { id: 'a', v: 10 },
    { id: 'b', v: 0 },
  ]);
});

test('a crash between the snapshot rename and the journal truncation replays harmlessly', () => {
  const j = fresh();
  j.put({ id: 'a', v: 1 });
  j.put({ id: 'a', v: 2 });
  j.put({ id: 'b', v: 1 });
  const oldJournal = `${j.dir}/old-journal`;
  copyFileSync(j.journal.journalPath, oldJournal);
  j.journal.compact(j.all.values());
  copyFileSync(oldJournal, j.journal.journalPath); // as if the truncation never happened
  expect(sorted(j.reopen().records)).toEqual([
    { id: 'a', v: 2 },
    { id: 'b', v: 1 },
  ]);
});

test('reset forgets everything; a state.json without a journal (an older fly-local) still loads', () => {
  const j = fresh();
  j.put({ id: 'a', v: 1 });
  j.journal.reset();
  expect(j.reopen().records).toEqual([]);
  writeFileSync(j.journal.snapshotPath, JSON.stringify({ version: 1, machines: [{ id: 'old', v: 7 }] }));
  writeFileSync(j.journal.journalPath, '');
  expect(j.reopen().records).toEqual([{ id: 'old', v: 7 }]);
});
