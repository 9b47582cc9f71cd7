import { runMachineRuntimeProcess } from './process';

// `npm run runtime`, and the entry of the image's bundle (scripts/build-runtime.ts).
runMachineRuntimeProcess().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
