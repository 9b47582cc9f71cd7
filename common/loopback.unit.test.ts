import { isLoopbackUrl } from './loopback';

test.each([
  ['postgres://u:p@127.0.0.1:5432/db', true],
  ['postgres://u:p@localhost/db', true],
  ['http://[::1]:4280/v1', true],
  ['http://127.3.2.1/', true],
  ['postgres://u:p@localhost.db.example.com/db', false],
  ['postgres://localhost:x@db.example.com/db', false],
  ['http://127.0.0.1.nip.io/', false],
  ['https://api.machines.dev/v1', false],
  ['not a url', false],
])('%s → %s', (url, loopback) => {
  expect(isLoopbackUrl(url)).toBe(loopback);
});
