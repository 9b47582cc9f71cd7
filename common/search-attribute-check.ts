import type { temporal } from '@temporalio/proto';
import { machineSearchAttributes } from './search-attributes';

/** `INDEXED_VALUE_TYPE_KEYWORD` in Temporal's API (temporal/api/enums/v1/common.proto). */
const KEYWORD = 2;

/** What a process needs of a Temporal connection to list a namespace's search attributes. */
interface OperatorConnection {
  operatorService: {
    listSearchAttributes(req: {
      namespace: string;
    }): Promise<temporal.api.operatorservice.v1.IListSearchAttributesResponse>;
  };
}

/** Stops a process at start-up: the namespace lacks search attributes the workflows write. */
export class MissingSearchAttributesError extends Error {
  constructor(
    readonly namespace: string,
    readonly missing: string[],
  ) {
    super(
      `Temporal namespace "${namespace}" lacks the search attribute(s) ${missing.join(', ')} (Keyword), which every ` +
        `machine workflow writes: starting one would fail. Create them, then start again:\n${setupCommands(namespace, missing)}`,
    );
    this.name = 'MissingSearchAttributesError';
  }
}

/** The exact commands that create `missing` (all Keyword), self-hosted and on Temporal Cloud. */
export function setupCommands(namespace: string, missing: string[]): string {
  const cli = missing.map((n) => `--name ${n} --type Keyword`).join(' ');
  const cloud = missing.map((n) => `--search-attribute "${n}=Keyword"`).join(' ');
  return [
    `  self-hosted:    temporal operator search-attribute create --namespace ${namespace} ${cli}`,
    `  Temporal Cloud: tcld namespace search-attributes add --namespace ${namespace} ${cloud}`,
  ].join('\n');
}

/**
 * The search attributes of ours the namespace lacks (or has with another type). Throws
 * MissingSearchAttributesError when any is missing; returns 'unverified' when the server will not
 * say (no permission to list them): the caller logs that and goes on.
 */
export async function checkSearchAttributes(
  connection: OperatorConnection,
  namespace: string,
): Promise<'ok' | 'unverified'> {
  let custom: Record<string, temporal.api.enums.v1.IndexedValueType> | null | undefined;
  try {
    custom = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes as typeof custom;
  } catch {
    return 'unverified';
  }
  const missing = machineSearchAttributes.map((k) => k.name).filter((name) => custom?.[name] !== KEYWORD);
  if (missing.length > 0) throw new MissingSearchAttributesError(namespace, missing);
  return 'ok';
}
