import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes operators filter machine workflows by (docs/technical-description.md §3), all Keyword. */
export const UserIdSearchAttribute = defineSearchAttributeKey('UserId', SearchAttributeType.KEYWORD);
export const MachineStateSearchAttribute = defineSearchAttributeKey('MachineState', SearchAttributeType.KEYWORD);
export const TierSearchAttribute = defineSearchAttributeKey('Tier', SearchAttributeType.KEYWORD);
export const RegionSearchAttribute = defineSearchAttributeKey('Region', SearchAttributeType.KEYWORD);
export const FlyMachineIdSearchAttribute = defineSearchAttributeKey('FlyMachineId', SearchAttributeType.KEYWORD);

export const machineSearchAttributes = [
  UserIdSearchAttribute,
  MachineStateSearchAttribute,
  TierSearchAttribute,
  RegionSearchAttribute,
  FlyMachineIdSearchAttribute,
];
