import { LIFECYCLE_DEFAULTS, lifecycleSettings } from './contract';
import { lifecycleSettingsSchema, machineLifecycleInputSchema } from './schemas';

describe('workflow settings: validated at the boundary, defaulted in the workflow without zod', () => {
  test('the schema and the workflow agree on every default', () => {
    expect(lifecycleSettingsSchema.parse({})).toEqual(LIFECYCLE_DEFAULTS);
    expect(lifecycleSettings()).toEqual(LIFECYCLE_DEFAULTS);
  });

  test('what the input sets wins; what it leaves undefined keeps the default', () => {
    const s = lifecycleSettings({ renewalInterval: '1 day', maxRestarts: undefined });
    expect(s.renewalInterval).toBe('1 day');
    expect(s.maxRestarts).toBe(LIFECYCLE_DEFAULTS.maxRestarts);
  });

  test('a duration the workflow could not parse is refused where input enters, naming the field', () => {
    const r = machineLifecycleInputSchema.safeParse({
      userId: '3f0c2a52-8d7e-4b8e-9a51-1f2d3c4b5a69',
      settings: { renewalInterval: 'every so often' },
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['settings', 'renewalInterval']);
  });
});
