import { sleep, until } from '../test/kit/wait';
import { createMachineWatcher } from './machine-events';

describe('createMachineWatcher: one status poller per user, shared by every open page', () => {
  test('three pages hear every read, in order, once each; a late page hears the current status at once', async () => {
    let reads = 0;
    const watcher = createMachineWatcher({ status: async () => ({ state: 'running', read: ++reads }), slowMs: 5 });
    const heard: number[][] = [[], [], []];
    const stops = heard.map((h) => watcher.subscribe('u1', (_e, d) => h.push((d as { read: number }).read)));
    await until('ten reads', async () => reads >= 10);
    // One poller: every page saw 1, 2, 3, … (three pollers would have made each page skip two in three).
    for (const h of heard) expect(h.slice(0, 10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const late: number[] = [];
    const stopLate = watcher.subscribe('u1', (_e, d) => late.push((d as { read: number }).read));
    expect(late).toHaveLength(1);
    expect(watcher.listeners('u1')).toBe(4);
    [...stops, stopLate].forEach((stop) => stop());
    expect(watcher.listeners('u1')).toBe(0);
    const after = reads;
    await sleep(50);
    expect(reads).toBeLessThanOrEqual(after + 1); // at most the read in flight when the last page left
  });

  test('only changes are sent; polls fast while the machine changes; poke reads at once; errors go to the page', async () => {
    const states = ['provisioning', 'provisioning', 'starting', 'running'];
    let i = 0;
    let fail = false;
    const watcher = createMachineWatcher({
      status: async () => {
        if (fail) throw new Error('Temporal is unreachable');
        return { state: states[Math.min(i++, states.length - 1)] };
      },
      fastMs: 5,
      slowMs: 60_000,
    });
    const events: [string, unknown][] = [];
    const stop = watcher.subscribe('u2', (e, d) => events.push([e, d]));
    await until('running', async () => events.some(([, d]) => (d as { state?: string }).state === 'running'));
    expect(events.map(([, d]) => (d as { state: string }).state)).toEqual(['provisioning', 'starting', 'running']);
    // Running: the next read is a minute away, unless this process just changed the machine.
    fail = true;
    watcher.poke('u2');
    await until('the error event', async () => events.some(([e]) => e === 'error'));
    expect(events.at(-1)).toEqual(['error', { detail: 'Temporal is unreachable' }]);
    stop();
    watcher.close();
  });
});
