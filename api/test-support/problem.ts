/** Asserts an RFC 9457 problem+json answer with this status, a detail and the request id. */
export const expectProblem = (
  res: { status: number; headers: Headers; json: Record<string, unknown> },
  status: number,
) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({ type: 'about:blank', status, detail: expect.any(String) });
  expect(res.json.requestId).toEqual(expect.any(String));
};
