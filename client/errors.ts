/**
 * A failed API call. For an answer from the API these are the members of its problem+json document
 * (`detail` is the sentence to show a person); `status` 0 means no answer at all (network, CORS).
 */
export class CloudExecutionError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly type: string;
  readonly requestId?: string;
  readonly errors?: { path: string; message: string }[];

  constructor(problem: {
    status: number;
    title: string;
    detail: string;
    type?: string;
    requestId?: string;
    errors?: { path: string; message: string }[];
    cause?: unknown;
  }) {
    super(problem.detail, problem.cause === undefined ? undefined : { cause: problem.cause });
    this.name = 'CloudExecutionError';
    this.status = problem.status;
    this.title = problem.title;
    this.detail = problem.detail;
    this.type = problem.type ?? 'about:blank';
    if (problem.requestId !== undefined) this.requestId = problem.requestId;
    if (problem.errors !== undefined) this.errors = problem.errors;
  }
}

export const isCloudExecutionError = (err: unknown): err is CloudExecutionError => err instanceof CloudExecutionError;
