#!/usr/bin/env node
// Cross-check of Vigie's OpenID Connect provider against openid-client (panva), an independent
// relying-party implementation: if openid-client accepts what Vigie says, a real application
// will too. Everything OIDC goes through openid-client; only the user's part (the login form)
// is driven by hand with fetch, as a browser would.
//
//   npm ci && npm test                 (VIGIE_BIN=/path/to/vigie to test another build)
//
// The script starts its own embedded demo (free port, temporary data directory), then re-runs
// itself with NODE_EXTRA_CA_CERTS pointing at the demo CA, so that every HTTPS request is
// verified against it (Node reads that variable only at start-up). The gateway is always
// stopped at the end; the exit status is non-zero if any check failed.
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, webcrypto } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { runChildAgainstDemo } from './run-demo.mjs';
import { totp } from './vigie-demo.mjs';

const SCRIPT = fileURLToPath(import.meta.url);

/** Thrown by check() after a failure: the remaining checks of that client are skipped. */
class Aborted extends Error {}

if (!process.env.VIGIE_CROSSCHECK_DEMO) {
  await parent();
} else {
  await child(JSON.parse(process.env.VIGIE_CROSSCHECK_DEMO));
}

// ---------------------------------------------------------------------------------------------
// Parent: owns the gateway process.

async function parent() {
  await runChildAgainstDemo({
    script: SCRIPT,
    label: 'vigie-crosscheck',
    env: 'VIGIE_CROSSCHECK_DEMO',
    payload: (demo) => ({ issuer: demo.issuer, info: demo.info }),
    what: 'the cross-check',
    timeoutSecs: 120,
  });
}

// ---------------------------------------------------------------------------------------------
// Child: the checks. Runs with the demo CA trusted.

async function child({ issuer, info }) {
  const client = await import('openid-client');
  const { ResponseBodyError } = client;
  const issuerUrl = new URL(issuer);
  const results = [];
  const started = Math.floor(Date.now() / 1000);

  // check(): a failure is recorded and the run goes on. need(): the next steps depend on the
  // result, so a failure also skips the rest of that client's checks.
  async function run(name, fn, hard) {
    try {
      const v = await fn();
      results.push({ name, ok: true });
      console.log(`ok   - ${name}`);
      return v;
    } catch (e) {
      results.push({ name, ok: false, error: e });
      console.log(`FAIL - ${name}\n       ${describe(e).replace(/\n/g, '\n       ')}`);
      if (hard) throw new Aborted(name);
      return undefined;
    }
  }
  const check = (name, fn) => run(name, fn, false);
  const need = (name, fn) => run(name, fn, true);

  // ---- a minimal cookie-carrying user agent for the login pages -----------------------------
  class UserAgent {
    constructor() { this.jar = new Map(); this.setCookies = []; }
    cookieHeader() { return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '); }
    async request(url, init = {}) {
      const u = new URL(url);
      const headers = new Headers(init.headers || {});
      if (u.origin === issuerUrl.origin && this.jar.size) headers.set('cookie', this.cookieHeader());
      headers.set('accept-language', 'fr-FR,fr;q=0.9');
      const res = await fetch(u, { ...init, headers, redirect: 'manual' });
      if (u.origin === issuerUrl.origin) {
        for (const sc of res.headers.getSetCookie()) {
          this.setCookies.push(sc);
          const [pair, ...attrs] = sc.split(';').map((s) => s.trim());
          const i = pair.indexOf('=');
          const name = pair.slice(0, i);
          const value = pair.slice(i + 1);
          const expired = attrs.some((a) => /^max-age=0$/i.test(a)) ||
            attrs.some((a) => /^expires=/i.test(a) && Date.parse(a.slice(8)) < Date.now());
          if (expired || value === '') this.jar.delete(name);
          else this.jar.set(name, value);
        }
      }
      return res;
    }
  }

  const redirectTarget = (res, base) => {
    assert.ok([302, 303].includes(res.status), `expected a redirect, got HTTP ${res.status}`);
    const loc = res.headers.get('location');
    assert.ok(loc, 'redirect without Location');
    return new URL(loc, base);
  };

  const decodeEntities = (s) => s.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (m, e) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'" })[e]);
  const attrs = (tag) => Object.fromEntries([...tag.matchAll(/([\w-]+)(?:="([^"]*)")?/g)].slice(1).map(([, k, v]) => [k.toLowerCase(), v === undefined ? '' : decodeEntities(v)]));

  /** The password + TOTP form of the login page (the card and the FIDO2 key have their own). */
  function parseLoginForm(html) {
    const form = [...html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)].find((f) => /action="\/login\/password"/.test(f[0]));
    assert.ok(form, 'the login page has no password + TOTP <form>');
    const f = attrs(form[0].match(/<form\b[^>]*>/i)[0]);
    const inputs = [...form[0].matchAll(/<input\b[^>]*>/gi)].map((m) => attrs(m[0]));
    return { method: (f.method || 'get').toLowerCase(), action: f.action, inputs };
  }

  /** Drives the authorization request through the login form; returns the callback URL. */
  async function logIn(ua, authUrl, user, redirectUri) {
    let res = await ua.request(authUrl);
    const loginUrl = redirectTarget(res, issuer);
    assert.equal(res.status, 303, 'the authorization endpoint should answer 303 to the login page');
    assert.equal(loginUrl.pathname, '/login', `expected a redirect to /login, got ${loginUrl}`);
    assert.ok(loginUrl.searchParams.get('flow'), 'the login URL has no flow');
    assert.ok(ua.jar.has('__Host-vigie-browser'), 'no __Host-vigie-browser cookie was set');
    res = await ua.request(loginUrl);
    assert.equal(res.status, 200, `GET ${loginUrl.pathname} answered ${res.status}`);
    const form = parseLoginForm(await res.text());
    assert.equal(form.method, 'post');
    assert.equal(form.action, '/login/password');
    const body = new URLSearchParams();
    for (const i of form.inputs.filter((i) => i.type === 'hidden')) body.set(i.name, i.value ?? '');
    for (const n of ['flow', 'csrf']) assert.ok(body.get(n), `hidden input ${n} missing`);
    for (const n of ['username', 'password', 'totp']) assert.ok(form.inputs.some((i) => i.name === n), `input ${n} missing`);
    body.set('username', user.username);
    body.set('password', user.password);
    body.set('totp', await totp(user.totp_secret));
    res = await ua.request(new URL(form.action, issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    if (res.status !== 303) {
      const text = await res.text();
      const alert = text.match(/role="alert"[^>]*>([^<]*)/);
      throw new Error(`the login form post answered ${res.status}${alert ? `: ${alert[1]}` : ''}`);
    }
    const cb = redirectTarget(res, issuer);
    assert.equal(`${cb.origin}${cb.pathname}`, redirectUri, 'the login did not redirect to the client');
    assert.ok(ua.jar.has('__Host-vigie-session'), 'no __Host-vigie-session cookie was set');
    const sc = ua.setCookies.filter((c) => c.startsWith('__Host-vigie-session=')).at(-1);
    // RFC 6265bis §4.1.3.2: __Host- cookies are Secure, Path=/ and carry no Domain.
    assert.match(sc, /;\s*Secure/i, `session cookie is not Secure: ${sc}`);
    assert.match(sc, /;\s*HttpOnly/i, `session cookie is not HttpOnly: ${sc}`);
    assert.match(sc, /;\s*Path=\/(;|$)/i, `session cookie Path is not /: ${sc}`);
    assert.doesNotMatch(sc, /;\s*Domain=/i, `session cookie has a Domain: ${sc}`);
    return cb;
  }

  async function expectOAuthError(promise, error, what) {
    try {
      await promise;
    } catch (e) {
      if (e instanceof ResponseBodyError) {
        assert.equal(e.error, error, `${what}: expected ${error}, got ${e.error} (${e.error_description})`);
        return e;
      }
      throw e;
    }
    assert.fail(`${what}: the server accepted it, expected ${error}`);
  }

  async function expectUserinfoRefused(config, accessToken, sub) {
    try {
      await client.fetchUserInfo(config, accessToken, sub);
    } catch (e) {
      const status = e.status ?? e.response?.status ?? e.cause?.status;
      assert.equal(status, 401, `expected 401, got ${describe(e)}`);
      return;
    }
    assert.fail('userinfo answered with a revoked access token');
  }

  const atHash = (token) => createHash('sha256').update(token).digest().subarray(0, 16).toString('base64url');
  const jwtHeader = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString());

  // ---- the clients --------------------------------------------------------------------------
  const byId = Object.fromEntries(info.clients.map((c) => [c.client_id, c]));
  const users = info.users;
  assert.ok(users.length >= 3, 'the demo should have at least three users');

  async function jwtKey(c) {
    const der = createPrivateKey(c.private_key_pem).export({ type: 'pkcs8', format: 'der' });
    const key = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    return client.PrivateKeyJwt({ key, kid: c.kid });
  }

  const plans = [
    { id: 'demo-cli', auth: (c) => client.ClientSecretPost(c.client_secret), introspects: true, user: users[0] },
    { id: 'demo-spa', auth: () => client.None(), introspects: false, user: users[1] },
    { id: 'demo-jwt', auth: jwtKey, introspects: true, user: users[2] },
  ];

  console.log(`# openid-client against ${issuer}`);
  for (const plan of plans) {
    const c = byId[plan.id];
    const tag = `${plan.id} (${c?.auth_method})`;
    console.log(`# ${tag}, user ${plan.user.username}`);
    try {
      await need(`${tag}: registered in demo.json`, () => assert.ok(c, `${plan.id} missing from demo.json`));
      const redirectUri = c.redirect_uris[0];
      const exchanges = [];
      const alg = c.id_token_signed_response_alg;
      const ua = new UserAgent();

      const config = await need(`${tag}: discovery`, async () => {
        const metadata = { id_token_signed_response_alg: alg };
        if (c.client_secret) metadata.client_secret = c.client_secret;
        const config = await client.discovery(issuerUrl, c.client_id, metadata, await plan.auth(c));
        // openid-client skips the ID token signature check for a token received straight from
        // the token endpoint over TLS (OIDC Core §3.1.3.7 item 6 allows it); ask for it, so
        // every ID token is verified against the published JWKS.
        client.enableNonRepudiationChecks(config);
        // Watch the HTTP exchanges openid-client makes, for the header checks below.
        config[client.customFetch] = async (url, options) => {
          const res = await fetch(url, options);
          exchanges.push({ url: String(url), method: options.method, status: res.status, headers: res.headers });
          return res;
        };
        const m = config.serverMetadata();
        assert.equal(m.issuer, issuer);
        assert.ok(m.code_challenge_methods_supported?.includes('S256'), 'S256 not advertised');
        assert.equal(m.authorization_response_iss_parameter_supported, true, 'RFC 9207 iss not advertised');
        assert.ok(m.end_session_endpoint, 'no end_session_endpoint');
        assert.ok(m.id_token_signing_alg_values_supported?.includes(alg), `${alg} not advertised`);
        return config;
      });

      // Starts an authorization request with PKCE S256, state and nonce.
      const authorization = async () => {
        const verifier = client.randomPKCECodeVerifier();
        const state = client.randomState();
        const nonce = client.randomNonce();
        const url = client.buildAuthorizationUrl(config, {
          redirect_uri: redirectUri,
          scope: 'openid profile hospital',
          code_challenge: await client.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
          nonce,
        });
        return { url, verifier, state, nonce };
      };
      const redeem = (a, callback) => client.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: a.verifier,
        expectedState: a.state,
        expectedNonce: a.nonce,
        idTokenExpected: true,
      });

      // ---- first grant: a real login ----
      const a = await authorization();
      const callback = await need(`${tag}: login form (password + TOTP) redirects to the client`, () => logIn(ua, a.url, plan.user, redirectUri));
      await check(`${tag}: authorization response carries state and iss (RFC 9207)`, () => {
        assert.equal(callback.searchParams.get('state'), a.state);
        assert.equal(callback.searchParams.get('iss'), issuer);
        assert.ok(callback.searchParams.get('code'));
      });
      const t1 = await need(`${tag}: authorizationCodeGrant (ID token signature via JWKS, iss, aud, exp, nonce, state, RFC 9207 iss)`, () => redeem(a, callback));
      const claims = t1.claims();
      await check(`${tag}: ID token signed with ${alg}`, () => assert.equal(jwtHeader(t1.id_token).alg, alg));
      // openid-client does not check at_hash in the code flow (it is OPTIONAL there); Vigie
      // always sends it, so check it here: OIDC Core §3.1.3.6, left half of SHA-256.
      await check(`${tag}: ID token at_hash matches the access token`, () => {
        assert.equal(claims.at_hash, atHash(t1.access_token));
      });
      await check(`${tag}: ID token claims acr, amr, auth_time, sid, name`, () => {
        assert.equal(claims.acr, 'urn:vigie:loa:2fa', 'acr');
        assert.ok(Array.isArray(claims.amr), `amr is not an array: ${JSON.stringify(claims.amr)}`);
        for (const m of ['pwd', 'otp', 'mfa']) assert.ok(claims.amr.includes(m), `amr ${JSON.stringify(claims.amr)} lacks ${m}`);
        assert.equal(typeof claims.auth_time, 'number', 'auth_time type');
        const now = Math.floor(Date.now() / 1000);
        assert.ok(claims.auth_time >= started - 5 && claims.auth_time <= now + 5, `auth_time ${claims.auth_time} is not the time of this login`);
        assert.equal(typeof claims.sid, 'string', 'sid type');
        assert.ok(claims.sid.length > 0, 'empty sid');
        assert.equal(claims.name, plan.user.name, 'name');
        assert.equal(claims.aud, c.client_id, 'aud');
        assert.equal(claims.nonce, a.nonce, 'nonce');
        assert.ok(claims.sub, 'no sub');
      });
      await check(`${tag}: token response has a refresh token and a Bearer access token`, () => {
        assert.ok(t1.refresh_token, 'no refresh_token');
        assert.equal(t1.token_type.toLowerCase(), 'bearer');
        assert.ok(t1.expires_in > 0);
      });
      await check(`${tag}: token response carries Cache-Control: no-store (RFC 6749 §5.1)`, () => {
        const tokenResponse = exchanges.filter((x) => x.url === config.serverMetadata().token_endpoint && x.status === 200).at(-1);
        assert.ok(tokenResponse, 'no token endpoint exchange seen');
        assert.match(tokenResponse.headers.get('cache-control') || '', /no-store/, 'Cache-Control');
      });
      await check(`${tag}: userinfo (sub matches the ID token)`, async () => {
        const ui = await client.fetchUserInfo(config, t1.access_token, claims.sub);
        assert.equal(ui.sub, claims.sub);
        assert.equal(ui.name, plan.user.name);
      });
      if (plan.introspects) {
        await check(`${tag}: introspection of the access and refresh tokens`, async () => {
          const at = await client.tokenIntrospection(config, t1.access_token);
          assert.equal(at.active, true, JSON.stringify(at));
          assert.equal(at.sub, claims.sub);
          assert.equal(at.client_id, c.client_id);
          assert.equal(at.acr, 'urn:vigie:loa:2fa', 'introspected acr');
          const rt = await client.tokenIntrospection(config, t1.refresh_token);
          assert.equal(rt.active, true, JSON.stringify(rt));
          assert.equal(rt.sub, claims.sub);
          const junk = await client.tokenIntrospection(config, 'not-a-token');
          assert.equal(junk.active, false);
        });
      } else {
        await check(`${tag}: a public client may not introspect (invalid_client)`, () =>
          expectOAuthError(client.tokenIntrospection(config, t1.access_token), 'invalid_client', 'introspection by a public client'));
      }
      if (plan.id === 'demo-cli') {
        await check(`${tag}: authorization code replay is refused (invalid_grant)`, () =>
          expectOAuthError(redeem(a, callback), 'invalid_grant', 'second redemption of the code'));
        // RFC 6749 §4.1.2: the server SHOULD revoke the tokens issued from a replayed code.
        await check(`${tag}: after the code replay, the tokens issued from that code are revoked`, async () => {
          await expectOAuthError(client.refreshTokenGrant(config, t1.refresh_token), 'invalid_grant', 'refresh token of the replayed code');
          await expectUserinfoRefused(config, t1.access_token, claims.sub);
        });
      }

      // ---- refresh token rotation and reuse detection (RFC 9700 §4.14.2) ----
      const grantA = plan.id === 'demo-cli'
        // The code replay above revoked grant 1 (RFC 6749 §4.1.2 SHOULD): use a fresh SSO grant.
        ? await need(`${tag}: SSO grant for the rotation checks`, async () => redeem(...await ssoAuthorization()))
        : t1;
      async function ssoAuthorization() {
        const s = await authorization();
        const res = await ua.request(s.url);
        const cb = redirectTarget(res, issuer);
        assert.equal(`${cb.origin}${cb.pathname}`, redirectUri, `with a live session the authorization endpoint should redirect to the client, not ${cb}`);
        return [s, cb];
      }
      const t2 = await need(`${tag}: refresh rotates the refresh token`, async () => {
        const t2 = await client.refreshTokenGrant(config, grantA.refresh_token);
        assert.ok(t2.refresh_token, 'no new refresh_token');
        assert.notEqual(t2.refresh_token, grantA.refresh_token, 'the refresh token did not rotate');
        assert.notEqual(t2.access_token, grantA.access_token);
        if (t2.id_token) {
          const c2 = t2.claims();
          assert.equal(c2.sub, claims.sub, 'sub of the refreshed ID token');
          assert.equal(c2.auth_time, claims.auth_time, 'auth_time changed on refresh');
          assert.equal(c2.sid, claims.sid, 'sid of the refreshed ID token');
          assert.equal(c2.acr, claims.acr, 'acr of the refreshed ID token');
          assert.equal(c2.at_hash, atHash(t2.access_token), 'at_hash of the refreshed ID token');
        }
        return t2;
      });
      await check(`${tag}: the new access token works at userinfo`, async () => {
        const ui = await client.fetchUserInfo(config, t2.access_token, claims.sub);
        assert.equal(ui.sub, claims.sub);
      });
      await check(`${tag}: the old refresh token is refused (invalid_grant)`, () =>
        expectOAuthError(client.refreshTokenGrant(config, grantA.refresh_token), 'invalid_grant', 'reuse of the rotated refresh token'));
      await check(`${tag}: after that reuse, the new refresh token is refused too (family revoked)`, () =>
        expectOAuthError(client.refreshTokenGrant(config, t2.refresh_token), 'invalid_grant', 'refresh with the new token after reuse'));
      await check(`${tag}: after that reuse, the family's access token is refused at userinfo`, () =>
        expectUserinfoRefused(config, t2.access_token, claims.sub));
      if (plan.introspects) {
        await check(`${tag}: after that reuse, introspection says inactive`, async () => {
          assert.equal((await client.tokenIntrospection(config, t2.access_token)).active, false);
          assert.equal((await client.tokenIntrospection(config, t2.refresh_token)).active, false);
        });
      }

      // ---- revocation (RFC 7009) on a second grant, obtained by SSO without a login form ----
      const [b, cbB] = await need(`${tag}: SSO: a second authorization needs no login`, ssoAuthorization);
      const tB = await need(`${tag}: SSO grant redeemed; same sid and auth_time`, async () => {
        const t = await redeem(b, cbB);
        assert.equal(t.claims().sid, claims.sid);
        assert.equal(t.claims().auth_time, claims.auth_time);
        return t;
      });
      await check(`${tag}: revocation of the refresh token`, () => client.tokenRevocation(config, tB.refresh_token));
      await check(`${tag}: the revoked refresh token is refused (invalid_grant)`, () =>
        expectOAuthError(client.refreshTokenGrant(config, tB.refresh_token), 'invalid_grant', 'refresh with a revoked token'));
      await check(`${tag}: the revoked grant's access token is refused at userinfo`, () =>
        expectUserinfoRefused(config, tB.access_token, claims.sub));
      if (plan.introspects) {
        await check(`${tag}: introspection of the revoked tokens says inactive`, async () => {
          assert.equal((await client.tokenIntrospection(config, tB.access_token)).active, false);
          assert.equal((await client.tokenIntrospection(config, tB.refresh_token)).active, false);
        });
      }
      await check(`${tag}: revoking an unknown token answers 200 (RFC 7009 §2.2)`, () => client.tokenRevocation(config, 'not-a-token'));

      // ---- RP-initiated logout ----
      const [cc, cbC] = await need(`${tag}: SSO: a third grant before logout`, ssoAuthorization);
      const tC = await need(`${tag}: third grant redeemed`, () => redeem(cc, cbC));
      const postLogout = c.post_logout_redirect_uris?.[0];
      // RP-Initiated Logout §2: id_token_hint is an ID Token. An access token (typ at+jwt) is not
      // one and must not be accepted in its place (RFC 9068 §2.1, RFC 8725 §3.11): otherwise
      // whoever holds the user's access token — a resource server — can end the user's SSO
      // session and revoke all its tokens, from any browser and without confirmation.
      await check(`${tag}: end-session refuses an access token as id_token_hint`, async () => {
        const params = { id_token_hint: tC.access_token };
        if (postLogout) Object.assign(params, { post_logout_redirect_uri: postLogout, state: 'x' });
        const res = await new UserAgent().request(client.buildEndSessionUrl(config, params));
        assert.equal(res.status, 400, `expected 400, got ${res.status} ${res.headers.get('location') || ''}`);
      });
      if (!postLogout) {
        await check(`${tag}: end-session refuses an unregistered post_logout_redirect_uri (no redirect)`, async () => {
          const url = client.buildEndSessionUrl(config, { id_token_hint: tC.id_token, post_logout_redirect_uri: redirectUri, state: 'x' });
          const res = await ua.request(url);
          assert.equal(res.status, 400, `expected 400, got ${res.status} ${res.headers.get('location') || ''}`);
        });
      }
      await check(`${tag}: end-session URL followed → ${postLogout ? '303 to post_logout_redirect_uri with state' : 'logged-out page'}`, async () => {
        const logoutState = client.randomState();
        const params = { id_token_hint: tC.id_token };
        if (postLogout) Object.assign(params, { post_logout_redirect_uri: postLogout, state: logoutState });
        const url = client.buildEndSessionUrl(config, params);
        const res = await ua.request(url);
        if (postLogout) {
          assert.equal(res.status, 303);
          const to = redirectTarget(res, issuer);
          assert.equal(`${to.origin}${to.pathname}`, postLogout);
          assert.equal(to.searchParams.get('state'), logoutState);
        } else {
          assert.equal(res.status, 200);
          assert.match(res.headers.get('content-type') || '', /text\/html/);
        }
        assert.ok(!ua.jar.has('__Host-vigie-session'), 'the session cookie was not cleared');
      });
      await check(`${tag}: after logout, the session's refresh token is refused`, () =>
        expectOAuthError(client.refreshTokenGrant(config, tC.refresh_token), 'invalid_grant', 'refresh after logout'));
      await check(`${tag}: after logout, the authorization endpoint asks for a login again`, async () => {
        const d = await authorization();
        const to = redirectTarget(await ua.request(d.url), issuer);
        assert.equal(to.pathname, '/login', `expected the login page, got ${to}`);
      });
    } catch (e) {
      if (!(e instanceof Aborted)) {
        results.push({ name: `${tag}: unexpected error`, ok: false, error: e });
        console.log(`FAIL - ${tag}: unexpected error\n       ${describe(e)}`);
      } else {
        console.log(`#    (remaining checks of ${tag} skipped)`);
      }
    }
  }

  const failed = results.filter((r) => !r.ok);
  console.log(`# ${results.length - failed.length} passed, ${failed.length} failed`);
  for (const f of failed) console.log(`#   FAILED: ${f.name}: ${describe(f.error).split('\n')[0]}`);
  process.exit(failed.length ? 1 : 0);
}


function describe(e) {
  if (!e) return String(e);
  if (e.code === 'ERR_ASSERTION' && 'expected' in e && e.operator !== 'fail' && e.operator !== '==') {
    const msg = e.generatedMessage ? `${e.operator} failed` : e.message.split('\n')[0];
    return `${msg}: actual ${JSON.stringify(e.actual)}, expected ${JSON.stringify(e.expected)}`;
  }
  const parts = [`${e.name || 'Error'}: ${e.message}`];
  if (e.code && typeof e.code === 'string') parts.push(`code ${e.code}`);
  if (e.error) parts.push(`error=${e.error}${e.error_description ? ` (${e.error_description})` : ''}`);
  if (e.status) parts.push(`HTTP ${e.status}`);
  if (e.cause && typeof e.cause === 'object' && !(e.cause instanceof Error)) parts.push(`cause ${JSON.stringify(e.cause).slice(0, 500)}`);
  else if (e.cause instanceof Error) parts.push(`cause ${e.cause.message}`);
  return parts.join('; ');
}
