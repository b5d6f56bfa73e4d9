// Self-test of the PSC stand-in with a client written by others (npm openid-client 6): the real CLI is started,
// the client discovers it through PSC's wallet path, logs in with PKCE, reads userinfo, authenticates to the token
// endpoint each way PSC allows, sees every misbehaviour, and logs out.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import * as jose from 'jose';
import * as client from 'openid-client';

import { control, makePki, nodeFetch, runCliExpectingFailure, startCli, tmpdir } from './helpers.mjs';

const RP = 'https://127.0.0.1:8443/login/psc/callback';
const RP_HOME = 'https://127.0.0.1:8443/';
const ROLE_OID = '1.2.250.1.213.1.1.5.5';

const dir = tmpdir();
const children = [];
let plain; // HTTP sandbox: secret, private_key_jwt and signed-userinfo clients
let tls; // HTTPS sandbox: tls_client_auth
let pki;
let rpKey; // private_key_jwt key of the `pkjwt` client
const httpFetch = nodeFetch();

function writeConfig(name, value) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

before(async () => {
  pki = makePki(dir);
  const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid: 'rp-1', alg: 'RS256', use: 'sig' };
  rpKey = { key: privateKey, kid: 'rp-1' };
  const plainConfig = writeConfig('plain.json', {
    listen: '127.0.0.1:0',
    clients: [
      {
        client_id: 'basic',
        client_secret: 'basic-secret-1',
        token_endpoint_auth_method: 'client_secret_basic',
        redirect_uris: [RP],
        post_logout_redirect_uris: [RP_HOME],
      },
      {
        client_id: 'post',
        client_secret: 'post-secret-12',
        token_endpoint_auth_method: 'client_secret_post',
        redirect_uris: [RP],
      },
      {
        client_id: 'pkjwt',
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [publicJwk] },
        redirect_uris: [RP],
      },
      {
        client_id: 'jwtui',
        client_secret: 'jwtui-secret-1',
        token_endpoint_auth_method: 'client_secret_basic',
        userinfo_signed_response_alg: 'RS256',
        redirect_uris: [RP],
      },
    ],
  });
  const tlsConfig = writeConfig('tls.json', {
    listen: '127.0.0.1:0',
    tls: { cert: 'server.pem', key: 'server.key', client_ca: 'client-ca.pem' },
    clients: [
      {
        client_id: 'mtls',
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_subject_dn: 'CN=vigie,O=CH Demo',
        redirect_uris: [RP],
      },
    ],
  });
  [plain, tls] = await Promise.all([startCli(['--config', plainConfig]), startCli(['--config', tlsConfig])]);
  children.push(plain.child, tls.child);
});

after(() => {
  for (const c of children) c.kill('SIGTERM');
  fs.rmSync(dir, { recursive: true, force: true });
});

async function configFor(sb, clientId, auth, { fetchImpl = httpFetch, metadata } = {}) {
  const cfg = await client.discovery(
    new URL(`${sb.issuer}/.well-known/wallet-openid-configuration`),
    clientId,
    metadata,
    auth,
    { [client.customFetch]: fetchImpl, execute: sb.issuer.startsWith('http:') ? [client.allowInsecureRequests] : [] },
  );
  // Verify ID token signatures against the JWKS too (openid-client skips it for TLS-fetched code-flow tokens).
  client.enableNonRepudiationChecks(cfg);
  return cfg;
}

function authorizationRequest(cfg) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  return client.calculatePKCECodeChallenge(verifier).then((challenge) => ({
    verifier,
    state,
    nonce,
    url: client.buildAuthorizationUrl(cfg, {
      redirect_uri: RP,
      scope: 'openid scope_all',
      acr_values: 'eidas1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state,
      nonce,
    }),
  }));
}

// A login through `__control/next-login`: one request to the authorization endpoint, a 302 back to the RP.
async function login(sb, cfg, { idnat = '810001234567', means, fetchImpl = httpFetch, queued = false } = {}) {
  if (!queued) await control(sb.origin, 'next-login', { idnat, ...(means ? { means } : {}) }, fetchImpl);
  const req = await authorizationRequest(cfg);
  const res = await fetchImpl(req.url, { redirect: 'manual' });
  assert.equal(res.status, 302, `authorization endpoint answered ${res.status}`);
  const location = new URL(res.headers.get('location'));
  assert.equal(`${location.origin}${location.pathname}`, RP);
  return client.authorizationCodeGrant(cfg, location, {
    pkceCodeVerifier: req.verifier,
    expectedState: req.state,
    expectedNonce: req.nonce,
    idTokenExpected: true,
  });
}

// oidc-provider answers a failed client authentication with 401 and, for Basic, a WWW-Authenticate challenge.
function invalidClient(err) {
  const challenge = err.cause?.find?.((c) => c.parameters?.error);
  assert.equal(err.error ?? challenge?.parameters.error, 'invalid_client', `${err.code}: ${err.message}`);
  return true;
}

async function lastLog(sb, endpoint, fetchImpl = httpFetch) {
  const entries = await control(sb.origin, `log?endpoint=${endpoint}`, undefined, fetchImpl);
  assert.ok(entries.length > 0, `no ${endpoint} entry in the log`);
  return entries.at(-1);
}

describe('discovery', () => {
  test('wallet path serves the same metadata as the standard path, shaped like PSC', async () => {
    const wallet = await (await fetch(`${plain.issuer}/.well-known/wallet-openid-configuration`)).json();
    const standard = await (await fetch(`${plain.issuer}/.well-known/openid-configuration`)).json();
    assert.deepEqual(wallet, standard);
    assert.match(plain.issuer, /^http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/esante-wallet$/);
    assert.equal(wallet.issuer, plain.issuer);
    for (const [key, tail] of [
      ['authorization_endpoint', 'auth'],
      ['token_endpoint', 'token'],
      ['userinfo_endpoint', 'userinfo'],
      ['jwks_uri', 'certs'],
      ['end_session_endpoint', 'logout'],
    ]) {
      assert.equal(wallet[key], `${plain.issuer}/protocol/openid-connect/${tail}`, key);
    }
    assert.deepEqual(wallet.scopes_supported, ['openid', 'scope_all']);
    assert.deepEqual(wallet.acr_values_supported, ['eidas1']);
    assert.deepEqual(wallet.code_challenge_methods_supported, ['S256']);
    for (const m of ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth']) {
      assert.ok(wallet.token_endpoint_auth_methods_supported.includes(m), m);
    }
    const log = await lastLog(plain, 'discovery');
    assert.equal(log.path, '/auth/realms/esante-wallet/.well-known/openid-configuration');
  });

  test('PKCE is required: an authorization request without code_challenge is refused', async () => {
    const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    const url = client.buildAuthorizationUrl(cfg, {
      redirect_uri: RP,
      scope: 'openid scope_all',
      state: 's',
      nonce: 'n',
    });
    const res = await httpFetch(url);
    assert.equal(res.status, 303);
    const back = new URL(res.headers.get('location'));
    assert.equal(back.searchParams.get('error'), 'invalid_request');
    assert.match(back.searchParams.get('error_description'), /requires PKCE/);
  });
});

describe('login and claims', () => {
  const expected = {
    810001234567: { profession: '10', specialty: 'SM26', given: 'MARIE', family: 'DURAND' },
    810009876543: { profession: '21', specialty: '', given: 'PAUL', family: 'MARTIN' },
    810005555555: { profession: '60', specialty: '', given: 'JULIE', family: 'BERNARD' },
    '0751234567': { profession: '70', specialty: '', given: 'LUC', family: 'PETIT' },
    810000000001: { profession: '10', specialty: 'SM26', given: 'INCONNU', family: 'ABSENT' },
  };

  test('every built-in professional logs in with e-CPS and gets the userinfo of reference §2', async () => {
    const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    for (const [idnat, want] of Object.entries(expected)) {
      const tokens = await login(plain, cfg, { idnat });
      const claims = tokens.claims();
      assert.equal(claims.acr, 'eidas1');
      assert.deepEqual(claims.amr, ['mobile', 'mfa']);
      assert.equal(claims.sub, `f:550dc1c8-d97b-4b1b-8f61-9b4e0c2b7a11:${idnat}`);
      assert.equal(typeof claims.auth_time, 'number');
      const info = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
      assert.equal(info.SubjectNameID, idnat);
      assert.equal(info.preferred_username, idnat);
      assert.equal(info.given_name, want.given);
      assert.equal(info.family_name, want.family);
      assert.deepEqual(info.SubjectRole, [`${want.profession}^${ROLE_OID}`]);
      assert.match(info.Secteur_Activite, /^SA\d\d\^1\.2\.250\.1\.71\.4\.2\.4$/);
      assert.equal(info.Palier_Authentification, 'APPPRIP3^1.2.250.1.213.1.5.1.1.1');
      assert.ok(info.otherIds.some((o) => o.identifiant === idnat && o.qualite === 1));
      const [exercice] = info.SubjectRefPro.exercices;
      assert.equal(exercice.codeProfession, want.profession);
      assert.equal(exercice.codeSavoirFaire, want.specialty);
      const [activity] = exercice.activities;
      assert.equal(activity.identifiantTechniqueDeLaStructure, info.SubjectOrganizationID);
      assert.equal(activity.raisonSocialeSite, info.SubjectOrganization);
      assert.equal(`${activity.codeSecteurDactivite}^1.2.250.1.71.4.2.4`, info.Secteur_Activite);
    }
  });

  test('pre-selected logins queue in order and can be narrowed to a client', async () => {
    const basic = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    const post = await configFor(plain, 'post', client.ClientSecretPost('post-secret-12'));
    await control(plain.origin, 'next-login', { idnat: '810009876543', client_id: 'post' });
    await control(plain.origin, 'next-login', { idnat: '810005555555', client_id: 'post', queue: true });
    const queued = await control(plain.origin, 'next-login', { idnat: '0751234567', client_id: 'basic' });
    assert.equal(queued.queued, 3);
    assert.match((await login(plain, basic, { queued: true })).claims().sub, /:0751234567$/);
    assert.match((await login(plain, post, { queued: true })).claims().sub, /:810009876543$/);
    assert.match((await login(plain, post, { queued: true })).claims().sub, /:810005555555$/);
    const res = await httpFetch((await authorizationRequest(post)).url);
    assert.equal(res.status, 303, 'with nothing queued the login page is shown');
    assert.match(res.headers.get('location'), /^\/interaction\//);
  });

  test('without queue, a new pre-selection replaces the pending one (C1: "the next authorization request")', async () => {
    const basic = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    await control(plain.origin, 'next-login', { idnat: '810009876543' });
    const replaced = await control(plain.origin, 'next-login', { idnat: '810005555555' });
    assert.equal(replaced.queued, 1);
    assert.match((await login(plain, basic, { queued: true })).claims().sub, /:810005555555$/);
  });

  test('a login with the CPS card says so in amr', async () => {
    const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    const tokens = await login(plain, cfg, { idnat: '0751234567', means: 'card' });
    assert.deepEqual(tokens.claims().amr, ['sc', 'pin', 'mfa']);
  });

  test('the login page lists the test identities and approving one returns to the RP', async () => {
    const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    const req = await authorizationRequest(cfg);
    const jar = new Map();
    const keep = (res) => {
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair.indexOf('=');
        jar.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
    };
    const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let res = await httpFetch(req.url);
    keep(res);
    assert.equal(res.status, 303);
    const pageUrl = new URL(res.headers.get('location'), plain.origin);
    assert.match(pageUrl.pathname, /^\/interaction\/[A-Za-z0-9_-]+$/);
    res = await httpFetch(pageUrl, { headers: { cookie: cookie() } });
    const html = await res.text();
    assert.equal(res.status, 200);
    assert.match(html, /Choisissez une identité de test/);
    assert.match(html, /Approuver sur e-CPS/);
    assert.match(html, /value="810009876543"/);
    assert.match(html, new RegExp(`action="${pageUrl.pathname}/approve"`));
    res = await httpFetch(`${pageUrl.href}/approve`, {
      method: 'POST',
      headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'idnat=810009876543&means=ecps',
    });
    keep(res);
    assert.equal(res.status, 303);
    res = await httpFetch(res.headers.get('location'), { headers: { cookie: cookie() } });
    assert.equal(res.status, 303);
    const tokens = await client.authorizationCodeGrant(cfg, new URL(res.headers.get('location')), {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
    });
    assert.match(tokens.claims().sub, /:810009876543$/);
    const approve = (await lastLog(plain, 'interaction')).params;
    assert.deepEqual(approve, { idnat: '810009876543', means: 'ecps' });
  });

  test('an unknown idnat posted to the login page is refused with the page again', async () => {
    const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    const req = await authorizationRequest(cfg);
    let res = await httpFetch(req.url);
    const cookie = res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const pageUrl = new URL(res.headers.get('location'), plain.origin);
    res = await httpFetch(`${pageUrl.href}/approve`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'idnat=899999999999',
    });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /Identité ou moyen inconnu/);
  });
});

describe('client authentication at the token endpoint', () => {
  test('client_secret_basic: the log shows the method and never the secret', async () => {
    const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    await login(plain, cfg);
    const entry = await lastLog(plain, 'token');
    assert.equal(entry.client_auth, 'client_secret_basic');
    assert.equal(entry.client_id, 'basic');
    assert.equal(entry.status, 200);
    assert.equal(entry.params.code, '<redacted>');
    assert.equal(entry.params.code_verifier, '<redacted>');
    assert.doesNotMatch(JSON.stringify(await control(plain.origin, 'log')), /basic-secret-1/);
  });

  test('client_secret_post', async () => {
    const cfg = await configFor(plain, 'post', client.ClientSecretPost('post-secret-12'));
    await login(plain, cfg);
    const entry = await lastLog(plain, 'token');
    assert.equal(entry.client_auth, 'client_secret_post');
    assert.equal(entry.params.client_secret, '<redacted>');
  });

  test('a wrong client secret is refused', async () => {
    const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('wrong-secret-1'));
    await assert.rejects(login(plain, cfg), invalidClient);
  });

  test('private_key_jwt: the assertion is checked against the registered JWKS', async () => {
    const cfg = await configFor(plain, 'pkjwt', client.PrivateKeyJwt(rpKey));
    await login(plain, cfg);
    const entry = await lastLog(plain, 'token');
    assert.equal(entry.client_auth, 'private_key_jwt');
    assert.equal(entry.client_assertion.alg, 'RS256');
    assert.equal(entry.client_assertion.iss, 'pkjwt');
    const other = await jose.generateKeyPair('RS256', { extractable: true });
    const bad = await configFor(plain, 'pkjwt', client.PrivateKeyJwt({ key: other.privateKey, kid: 'rp-1' }));
    await assert.rejects(login(plain, bad), invalidClient);
  });

  test('tls_client_auth over HTTPS with a certificate from the configured client CA', async () => {
    const withCert = nodeFetch({ ca: pki.serverCa, ...pki.client });
    const cfg = await configFor(tls, 'mtls', client.TlsClientAuth(), { fetchImpl: withCert });
    const tokens = await login(tls, cfg, { fetchImpl: withCert });
    assert.match(tokens.claims().iss, /^https:\/\/127\.0\.0\.1:\d+\/auth\/realms\/esante-wallet$/);
    const entry = await lastLog(tls, 'token', withCert);
    assert.equal(entry.client_auth, 'tls_client_auth');
    assert.equal(entry.tls_client_cert, 'CN=vigie,O=CH Demo');
    assert.equal(entry.tls_client_cert_authorized, true);
    assert.equal(entry.status, 200);
  });

  test('tls_client_auth: no certificate, or one from another CA, is refused', async () => {
    const noCert = nodeFetch({ ca: pki.serverCa });
    const cfg = await configFor(tls, 'mtls', client.TlsClientAuth(), { fetchImpl: noCert });
    await assert.rejects(login(tls, cfg, { fetchImpl: noCert }), invalidClient);
    const rogue = nodeFetch({ ca: pki.serverCa, ...pki.rogue });
    const cfg2 = await configFor(tls, 'mtls', client.TlsClientAuth(), { fetchImpl: rogue });
    await assert.rejects(login(tls, cfg2, { fetchImpl: rogue }), invalidClient);
    const entry = await lastLog(tls, 'token', rogue);
    assert.equal(entry.tls_client_cert_authorized, false);
    assert.equal(entry.status, 401);
  });
});

describe('userinfo as a signed JWT', () => {
  test('a client registered with userinfo_signed_response_alg gets application/jwt, verified by openid-client', async () => {
    const cfg = await configFor(plain, 'jwtui', client.ClientSecretBasic('jwtui-secret-1'), {
      metadata: { userinfo_signed_response_alg: 'RS256' },
    });
    const tokens = await login(plain, cfg, { idnat: '810005555555' });
    const raw = await httpFetch(`${plain.issuer}/protocol/openid-connect/userinfo`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    assert.match(raw.headers.get('content-type'), /^application\/jwt/);
    const info = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub);
    assert.equal(info.SubjectNameID, '810005555555');
    assert.equal(info.iss, plain.issuer);
  });
});

describe('misbehaviour (test-only control API)', () => {
  const refused = {
    wrong_iss: /unexpected JWT "iss"/,
    wrong_aud: /unexpected JWT "aud"/,
    expired: /unexpected JWT "exp".*expiration is past/,
    wrong_nonce: /unexpected ID Token "nonce"/,
    alg_none: /unexpected JWT "alg" header/,
    unknown_kid: /no applicable keys found/,
  };
  for (const [mode, message] of Object.entries(refused)) {
    test(`${mode}: openid-client refuses the ID token, and the next login is fine again`, async () => {
      const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
      await control(plain.origin, 'misbehave', { mode, times: 1 });
      await assert.rejects(login(plain, cfg), (err) => {
        assert.match(`${err.message} / ${err.cause?.message}`, message);
        return true;
      });
      const entry = await lastLog(plain, 'token');
      assert.equal(entry.misbehave, mode);
      const tokens = await login(plain, cfg);
      assert.equal(tokens.claims().acr, 'eidas1');
    });
  }

  test('every ID token carries the at_hash of its access token (as PSC\'s Keycloak); wrong_at_hash another one', async () => {
    // OIDC Core §3.1.3.6, RS256: base64url of the left half of SHA-256(access_token), computed here.
    const expected = (accessToken) =>
      crypto.createHash('sha256').update(accessToken).digest().subarray(0, 16).toString('base64url');
    const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    const tokens = await login(plain, cfg);
    assert.equal(tokens.claims().at_hash, expected(tokens.access_token));
    await control(plain.origin, 'misbehave', { mode: 'wrong_at_hash' });
    const wrong = await login(plain, cfg);
    assert.match(wrong.claims().at_hash, /^[A-Za-z0-9_-]{22}$/);
    assert.notEqual(wrong.claims().at_hash, expected(wrong.access_token));
    assert.equal((await lastLog(plain, 'token')).misbehave, 'wrong_at_hash');
  });

  test('userinfo_sub_mismatch: openid-client refuses userinfo whose sub differs (JSON and JWT)', async () => {
    for (const [id, secret] of [
      ['basic', 'basic-secret-1'],
      ['jwtui', 'jwtui-secret-1'],
    ]) {
      const metadata = id === 'jwtui' ? { userinfo_signed_response_alg: 'RS256' } : undefined;
      const cfg = await configFor(plain, id, client.ClientSecretBasic(secret), { metadata });
      const tokens = await login(plain, cfg);
      await control(plain.origin, 'misbehave', { mode: 'userinfo_sub_mismatch' });
      await assert.rejects(client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub), (err) => {
        assert.match(err.cause?.message, /body "sub" property value/);
        return true;
      });
      assert.equal((await lastLog(plain, 'userinfo')).misbehave, 'userinfo_sub_mismatch');
      const info = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub);
      assert.equal(info.sub, tokens.claims().sub);
    }
  });

  test('token_error: the token endpoint answers 500 once, without using up the code', async () => {
    const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    await control(plain.origin, 'next-login', { idnat: '810001234567' });
    const req = await authorizationRequest(cfg);
    const callback = new URL((await httpFetch(req.url)).headers.get('location'));
    const checks = { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce };
    await control(plain.origin, 'misbehave', { mode: 'token_error' });
    await assert.rejects(client.authorizationCodeGrant(cfg, callback, checks), (err) => {
      assert.equal(err.code, 'OAUTH_RESPONSE_IS_NOT_CONFORM');
      assert.equal(err.cause.status, 500);
      return true;
    });
    assert.equal((await lastLog(plain, 'token')).misbehave, 'token_error');
    const tokens = await client.authorizationCodeGrant(cfg, callback, checks);
    assert.equal(tokens.claims().acr, 'eidas1');
  });

  test('slow delays every endpoint, down answers 503 or drops the connection, reset restores', async () => {
    const discovery = `${plain.issuer}/.well-known/wallet-openid-configuration`;
    await control(plain.origin, 'misbehave', { mode: 'slow', ms: 300 });
    const t0 = performance.now();
    assert.equal((await httpFetch(discovery)).status, 200);
    assert.ok(performance.now() - t0 >= 290, 'slow did not delay discovery');
    await control(plain.origin, 'reset', {});
    await control(plain.origin, 'misbehave', { mode: 'down' });
    assert.equal((await httpFetch(discovery)).status, 503);
    assert.equal((await httpFetch(`${plain.issuer}/protocol/openid-connect/certs`)).status, 503);
    await assert.rejects(configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1')), (err) => {
      assert.equal(err.cause?.status, 503);
      return true;
    });
    const downEntry = await lastLog(plain, 'discovery');
    assert.equal(downEntry.misbehave, 'down');
    assert.equal(downEntry.status, 503);
    await control(plain.origin, 'misbehave', { mode: 'down', close: true });
    await assert.rejects(httpFetch(discovery), /socket hang up|ECONNRESET/);
    await control(plain.origin, 'reset', {});
    assert.equal((await httpFetch(discovery)).status, 200);
    // reset also empties the log: the only discovery entry is the one just made.
    const entries = await control(plain.origin, 'log?endpoint=discovery');
    assert.equal(entries.length, 1);
    assert.equal(entries[0].status, 200);
    assert.equal(entries[0].misbehave, undefined);
  });

  test('misbehaviour narrowed to one client_id leaves the other clients alone', async () => {
    const basic = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    const post = await configFor(plain, 'post', client.ClientSecretPost('post-secret-12'));
    await control(plain.origin, 'misbehave', { mode: 'wrong_aud', client_id: 'post' });
    await login(plain, basic);
    await assert.rejects(login(plain, post), (err) => {
      assert.match(err.cause?.message, /unexpected JWT "aud"/);
      return true;
    });
    // token_error for a client_secret_post client: the stand-in reads the form to find the client, and
    // oidc-provider still gets the body (the retry with the same code succeeds).
    await control(plain.origin, 'misbehave', { mode: 'token_error', client_id: 'post' });
    await login(plain, basic);
    await control(plain.origin, 'next-login', { idnat: '810001234567' });
    const req = await authorizationRequest(post);
    const callback = new URL((await httpFetch(req.url)).headers.get('location'));
    const checks = { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce };
    await assert.rejects(client.authorizationCodeGrant(post, callback, checks), (err) => err.cause?.status === 500);
    const tokens = await client.authorizationCodeGrant(post, callback, checks);
    assert.equal(tokens.claims().aud, 'post');
  });

  test('the control API refuses garbage with 400 and keeps serving', async () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    const bodies = [
      '',
      'null',
      '[]',
      '"x"',
      '{"mode":"nope"}',
      '{"mode":"slow","ms":-1}',
      '{"mode":"wrong_iss","times":0}',
    ];
    for (let i = 0; i < 40; i += 1) {
      bodies.push(Buffer.from(Array.from({ length: rand() % 64 }, () => rand() % 256)).toString('latin1'));
    }
    for (const body of bodies) {
      const res = await fetch(`${plain.origin}/__control/misbehave`, { method: 'POST', body });
      assert.equal(res.status, 400, `body ${JSON.stringify(body)} got ${res.status}`);
    }
    for (const body of [
      '{"idnat":"899999999999"}',
      '{"idnat":"810001234567","means":"sms"}',
      '{"idnat":"810001234567","amr":"x"}',
    ]) {
      const res = await fetch(`${plain.origin}/__control/next-login`, { method: 'POST', body });
      assert.equal(res.status, 400, body);
    }
    assert.equal((await fetch(`${plain.issuer}/.well-known/openid-configuration`)).status, 200);
  });
});

describe('logout', () => {
  test('end_session with id_token_hint redirects to post_logout_redirect_uri with state, and is logged', async () => {
    const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    const tokens = await login(plain, cfg);
    const url = client.buildEndSessionUrl(cfg, {
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri: RP_HOME,
      state: 'bye-1',
    });
    const res = await httpFetch(url);
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), `${RP_HOME}?state=bye-1`);
    const entry = await lastLog(plain, 'logout');
    assert.equal(entry.params.id_token_hint, tokens.id_token);
    assert.equal(entry.params.post_logout_redirect_uri, RP_HOME);
    assert.equal(entry.logged_out, true);
  });

  test('an unregistered post_logout_redirect_uri is refused', async () => {
    const cfg = await configFor(plain, 'basic', client.ClientSecretBasic('basic-secret-1'));
    const tokens = await login(plain, cfg);
    const url = client.buildEndSessionUrl(cfg, {
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri: 'https://evil.example/',
    });
    const res = await httpFetch(url);
    assert.equal(res.status, 400);
  });
});

describe('configuration', () => {
  const cases = [
    [{ listen: 'nope', clients: [] }, /"listen" must be host:port/],
    [{ clients: [] }, /"clients" must be a non-empty list/],
    [
      { clients: [{ client_id: 'a', client_secret: 'secret-123', redirect_uris: [RP] }], extra: 1 },
      /unknown key "extra"/,
    ],
    [
      { clients: [{ client_id: 'a', token_endpoint_auth_method: 'private_key_jwt', redirect_uris: [RP] }] },
      /clients\[0\]\.jwks .* private_key_jwt/,
    ],
    [
      {
        clients: [
          {
            client_id: 'a',
            token_endpoint_auth_method: 'tls_client_auth',
            tls_client_auth_subject_dn: 'CN=a',
            redirect_uris: [RP],
          },
        ],
      },
      /tls\.client_ca/,
    ],
    [
      { clients: [{ client_id: 'a', client_secret: 'short', redirect_uris: [RP] }] },
      /client_secret \(8 characters or more\)/,
    ],
    [
      {
        clients: [{ client_id: 'a', client_secret: 'secret-123', redirect_uris: [RP] }],
        identities: [{ idnat: '9x' }],
      },
      /identities\[0\]\.idnat/,
    ],
  ];
  for (const [i, [value, message]] of cases.entries()) {
    test(`a bad config file is refused with a precise message (${i})`, async () => {
      const file = writeConfig(`bad-${i}.json`, value);
      const { code, stderr, stdout } = await runCliExpectingFailure(['--config', file]);
      assert.equal(code, 2);
      assert.match(stderr, message);
      assert.equal(stdout, '');
    });
  }

  test('no arguments: usage and exit 2', async () => {
    const { code, stderr } = await runCliExpectingFailure([]);
    assert.equal(code, 2);
    assert.match(stderr, /--config FILE or --demo/);
  });
});

describe('process output', () => {
  test('after all of the above, stdout still holds only the READY line, and nothing failed inside', () => {
    for (const sb of [plain, tls]) {
      assert.equal(sb.stdout(), `PSC-SANDBOX READY ${sb.issuer}\n`);
      assert.doesNotMatch(sb.stderr(), /server_error|TypeError|ReferenceError/);
    }
  });
});
