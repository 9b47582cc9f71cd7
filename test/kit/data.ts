import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The recorded Binance data (../shared/data/binance, or BINANCE_DATA_DIR relative to the repository),
 * read in place and never copied in. It is third-party and may be absent: tests that need it are then
 * reported as skipped, with the reason in their name, never passed.
 */
export const recordedDataDir = path.resolve(
  __dirname,
  '..',
  '..',
  process.env.BINANCE_DATA_DIR || '../shared/data/binance',
);
export const haveRecordedData = existsSync(recordedDataDir);

const reason = `(skipped: no recorded Binance data at ${recordedDataDir}; set BINANCE_DATA_DIR)`;

/** `describe` when the recorded data is there, else `describe.skip` with the reason in the name. */
export const describeWithData = (name: string, body: () => void) =>
  haveRecordedData ? describe(name, body) : describe.skip(`${name} ${reason}`, body);

/** `test` when the recorded data is there, else `test.skip` with the reason in the name. */
export const testWithData = (name: string, body: jest.ProvidesCallback, timeoutMs?: number) =>
  haveRecordedData ? test(name, body, timeoutMs) : test.skip(`${name} ${reason}`, body);
