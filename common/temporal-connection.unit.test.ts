import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { temporalConnectionOptions, temporalNamespace } from './temporal-connection';

const local = { TEMPORAL_ADDRESS: '127.0.0.1:7233', TEMPORAL_NAMESPACE: 'default' };
const dir = mkdtempSync(join(tmpdir(), 'ce-temporal-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Temporal connection settings, loaded the way Temporal loads them', () => {
  test('local: the address, plain, no credentials', () => {
    const options = temporalConnectionOptions(local, {});
    expect(options.address).toBe('127.0.0.1:7233');
    expect(options.apiKey).toBeUndefined();
    expect(options.tls).toBeFalsy();
  });

  test('Temporal Cloud with an API key: TLS is on by default', () => {
    const config = { TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'ns.acct' };
    const options = temporalConnectionOptions(config, {
      TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS,
      TEMPORAL_API_KEY: 'key-123',
    });
    expect(options).toMatchObject({ address: 'ns.acct.tmprl.cloud:7233', apiKey: 'key-123' });
    expect(options.tls).toBeTruthy();
  });

  test('mTLS from Temporal’s standard names, and from the older aliases', () => {
    writeFileSync(join(dir, 'c.pem'), 'CERT');
    writeFileSync(join(dir, 'k.pem'), 'KEY');
    const standard = temporalConnectionOptions(local, {
      TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'c.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'k.pem'),
    });
    const aliased = temporalConnectionOptions(
      { ...local, TEMPORAL_TLS_CERT_PATH: join(dir, 'c.pem'), TEMPORAL_TLS_KEY_PATH: join(dir, 'k.pem') },
      {},
    );
    for (const options of [standard, aliased]) {
      const tls = options.tls as { clientCertPair?: { crt: Uint8Array; key: Uint8Array } };
      expect(Buffer.from(tls.clientCertPair!.crt).toString()).toBe('CERT');
      expect(Buffer.from(tls.clientCertPair!.key).toString()).toBe('KEY');
    }
  });

  test('a TOML profile (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE) gives address and namespace; the environment overrides it', () => {
    const file = join(dir, 'temporal.toml');
    writeFileSync(
      file,
      ['[profile.prod]', 'address = "prod.example.com:7233"', 'namespace = "prod-ns"', 'api_key = "from-file"'].join(
        '\n',
      ),
    );
    const env = { TEMPORAL_PROFILE: 'prod', TEMPORAL_CONFIG_FILE: file };
    expect(temporalConnectionOptions(local, env)).toMatchObject({
      address: 'prod.example.com:7233',
      apiKey: 'from-file',
    });
    expect(temporalNamespace(local, env)).toBe('prod-ns');
    const overridden = { ...env, TEMPORAL_ADDRESS: 'other:7233', TEMPORAL_API_KEY: 'from-env' };
    expect(temporalConnectionOptions({ ...local, TEMPORAL_ADDRESS: 'other:7233' }, overridden)).toMatchObject({
      address: 'other:7233',
      apiKey: 'from-env',
    });
  });

  test('no named profile: a stray default config file is never read', () => {
    expect(temporalConnectionOptions(local, { HOME: dir, XDG_CONFIG_HOME: dir }).address).toBe('127.0.0.1:7233');
  });
});
