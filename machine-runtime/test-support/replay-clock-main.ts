import { z } from 'zod';
import { runMachineRuntimeProcess } from '../process';

/*
 * The real runtime process (process.ts, as main.ts runs it) on the market clock of a binance-replay
 * running elsewhere, for tests that kill and restart it. The replay's clock runs `speed` times real
 * time from `marketMs` at wall time `wallMs`; production's clock is Date.now, which against a
 * recording from 2024 would take the candle still forming for closed. `lagMs` keeps this clock a
 * little behind the replay's, the safe side: a close not yet due here comes from the stream or REST.
 */
const replayClock = z.object({
  wallMs: z.number(),
  marketMs: z.number(),
  speed: z.number().positive(),
  lagMs: z.number().min(0).default(2_000),
});

const parsed = replayClock.safeParse(JSON.parse(process.env.REPLAY_CLOCK ?? 'null'));
if (!parsed.success) {
  console.error('REPLAY_CLOCK must be {"wallMs","marketMs","speed","lagMs"?} (the replay clock at a wall time)');
  process.exit(78);
}
const { wallMs, marketMs, speed, lagMs } = parsed.data;

runMachineRuntimeProcess({ clock: () => marketMs + (Date.now() - wallMs) * speed - lagMs }).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
