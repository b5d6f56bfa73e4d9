#!/usr/bin/env node
// Vigie as Pro Santé Connect's FI tiers (docs/fi-tiers.md), checked by openid-client (panva)
// playing PSC's broker: the demo's confidential client `demo-psc` (client_secret_basic, RS256)
// sends code + PKCE S256 + nonce, `acr_values` = Vigie's phishing-resistant acr and a
// `login_hint` holding the professional's idNat; the professional logs in with the demo CPS
// (TLS client certificate, as the card middleware presents it); openid-client redeems the code
// and validates the ID token itself (signature against the published JWKS, iss, aud, exp,
// nonce, auth_time within max_age), then this script checks `tid`, `oid`, `amr` and `acr`. Then
// PSC's own request, `acr_values=eidas1`, answered from the card session with `acr` `eidas1`.
//
//   npm ci && node fi-tiers.mjs        (VIGIE_BIN=/path/to/vigie to test another build)
//
// Like crosscheck.mjs: starts its own demo, re-runs itself with NODE_EXTRA_CA_CERTS set to the
// demo CA, always stops the gateway; the exit status is non-zero if any check failed.
import assert from 'node:assert/strict';
import https from 'node:https';
import { fileURLToPath } from 'node:url';

import { runChildAgainstDemo } from './run-demo.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
const ACR_PHR = 'urn:vigie:loa:2fa-phr';
const PSC = 'demo-psc';
const CARD_HOLDER = 'demo.medecin';
// reference/psc.md §3: the FI-tiers guides send these for a CPx card and its PIN.
const CARD_AMR = ['sc', 'pin', 'mfa', 'hwk'];
// RFC 9562 §5.7: UUID version 7.
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

if (!process.env.VIGIE_FI_TIERS_DEMO) {
  await parent();
} else {
  await child(JSON.parse(process.env.VIGIE_FI_TIERS_DEMO));
}

async function parent() {
  await runChildAgainstDemo({
    script: SCRIPT,
    label: 'vigie-fi-tiers',
    env: 'VIGIE_FI_TIERS_DEMO',
    payload: (demo) => ({ issuer: demo.issuer, port: demo.port, info: demo.info }),
    what: 'the FI-tiers check',
    timeoutSecs: 60,
  });
}

async function child({ issuer, port, info }) {
  const client = await import('openid-client');
  const issuerUrl = new URL(issuer);
  const results = [];
  const started = Math.floor(Date.now() / 1000);
  const run = async (name, fn) => {
    try {
      const v = await fn();
      results.push({ name, ok: true });
      console.log(`ok   - ${name}`);
      return v;
    } catch (e) {
      results.push({ name, ok: false });
      console.log(`FAIL - ${name}\n       ${e?.stack?.split('\n').slice(0, 3).join('\n       ') || e}`);
      throw e;
    }
  };

  // Cookies of the gateway's origin, as a browser keeps them.
  const jar = new Map();
  const keep = (setCookies) => {
    for (const sc of setCookies) {
      const [pair] = sc.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const browse = async (url) => {
    const res = await fetch(url, { redirect: 'manual', headers: jar.size ? { cookie: cookie() } : {} });
    keep(res.headers.getSetCookie());
    return res;
  };
  // A request presenting the card (certificate chain + key) in the TLS handshake.
  const withCard = (path, card) => new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', servername: 'localhost', port, path, method: 'GET',
      cert: card.chain_pem, key: card.key_pem,
      headers: { host: `localhost:${port}`, cookie: cookie() },
    }, (res) => {
      res.resume();
      keep([res.headers['set-cookie'] ?? []].flat());
      res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location }));
    });
    req.on('error', reject);
    req.end();
  });

  try {
    const c = info.clients.find((x) => x.client_id === PSC);
    const holder = info.users.find((u) => u.username === CARD_HOLDER);
    await run('demo.json: demo-psc is a confidential FI-tiers client; the card holder has an idNat and a card', () => {
      assert.ok(c, `${PSC} missing from demo.json`);
      assert.equal(c.auth_method, 'client_secret_basic');
      assert.ok(c.client_secret && c.fi_tiers?.tid, JSON.stringify(c));
      assert.ok(holder?.idnat && holder?.card?.key_pem, `${CARD_HOLDER} lacks an idNat or a card`);
    });
    const redirectUri = c.redirect_uris[0];
    const config = await run('discovery (openid-client), tid and oid advertised', async () => {
      const config = await client.discovery(issuerUrl, c.client_id, {
        client_secret: c.client_secret,
        id_token_signed_response_alg: c.id_token_signed_response_alg,
      }, client.ClientSecretBasic(c.client_secret));
      // Verify the ID token signature against the JWKS even though it came over TLS.
      client.enableNonRepudiationChecks(config);
      const m = config.serverMetadata();
      assert.ok(m.acr_values_supported.includes(ACR_PHR), 'phishing-resistant acr advertised');
      assert.ok(m.acr_values_supported.includes('eidas1'), "PSC's eidas1 advertised");
      for (const claim of ['tid', 'oid', 'amr', 'acr', 'auth_time']) assert.ok(m.claims_supported.includes(claim), `${claim} in claims_supported`);
      return config;
    });

    // PSC's broker request: code + PKCE S256 + state + nonce, and `extra` (acr_values, login_hint).
    const brokerRequest = async (extra) => {
      const r = { verifier: client.randomPKCECodeVerifier(), state: client.randomState(), nonce: client.randomNonce() };
      r.url = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid profile',
        code_challenge: await client.calculatePKCECodeChallenge(r.verifier),
        code_challenge_method: 'S256',
        state: r.state,
        nonce: r.nonce,
        ...extra,
      });
      return r;
    };
    // openid-client redeems the code and validates the ID token (JWKS signature, iss, aud, exp, nonce).
    const grant = (r, callbackUrl, extra = {}) => client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: r.verifier, expectedState: r.state, expectedNonce: r.nonce, idTokenExpected: true, ...extra,
    });
    const first = await brokerRequest({ acr_values: ACR_PHR, login_hint: holder.idnat });
    const { state, url: authUrl } = first;
    const flow = await run('authorization request → login page offering the card, not the password form', async () => {
      const res = await browse(authUrl);
      assert.equal(res.status, 303);
      const login = new URL(res.headers.get('location'), issuer);
      assert.equal(login.pathname, '/login');
      const page = await browse(login);
      const html = await page.text();
      assert.match(html, /href="\/login\/cps\?flow=/, 'card login offered');
      assert.doesNotMatch(html, /action="\/login\/password"/, 'no password + TOTP for a phishing-resistant request');
      return login.searchParams.get('flow');
    });
    const callback = await run('card login (CPS + PIN) → back to PSC with code, state, iss', async () => {
      const res = await withCard(`/login/cps?flow=${encodeURIComponent(flow)}`, holder.card);
      assert.equal(res.status, 303, `card login answered ${res.status}`);
      const cb = new URL(res.location);
      assert.equal(`${cb.origin}${cb.pathname}`, redirectUri);
      assert.equal(cb.searchParams.get('state'), state);
      assert.equal(cb.searchParams.get('iss'), issuer);
      return cb;
    });
    const tokens = await run('authorizationCodeGrant: openid-client validates the ID token (JWKS signature, iss, aud, exp, nonce, auth_time within 4 h)', () =>
      grant(first, callback, { maxAge: c.fi_tiers.max_auth_age_secs }));
    const claims = tokens.claims();
    await run('ID token: tid is the configured tenant id', () => assert.equal(claims.tid, c.fi_tiers.tid));
    await run('ID token: oid is an immutable UUID v7, the identity (sub)', () => {
      assert.match(claims.oid, UUID_V7);
      assert.equal(claims.oid, claims.sub);
    });
    await run('ID token: amr is sc pin mfa hwk (card + PIN)', () => assert.deepEqual(claims.amr, CARD_AMR));
    await run('ID token: acr is the phishing-resistant level requested', () => assert.equal(claims.acr, ACR_PHR));
    await run('ID token: auth_time is this login; RS256 as registered', () => {
      assert.ok(claims.auth_time >= started - 5 && claims.auth_time <= Math.floor(Date.now() / 1000) + 5, `auth_time ${claims.auth_time}`);
      assert.equal(JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')).alg, 'RS256');
    });
    await run('userinfo: the same tid, oid and amr', async () => {
      const ui = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      assert.equal(ui.tid, claims.tid);
      assert.equal(ui.oid, claims.oid);
      assert.deepEqual(ui.amr, CARD_AMR);
    });
    // PSC's own request (acr_values=eidas1): the card session answers it, in PSC's terms.
    const again = await brokerRequest({ acr_values: 'eidas1' });
    const eidas1 = await run('acr_values=eidas1: the card session (SSO) answers with a code', async () => {
      const res = await browse(again.url);
      assert.equal(res.status, 303);
      const cb = new URL(res.headers.get('location'));
      assert.equal(`${cb.origin}${cb.pathname}`, redirectUri);
      return grant(again, cb);
    });
    await run('ID token: acr is eidas1, the value PSC asked for', () => assert.equal(eidas1.claims().acr, 'eidas1'));
  } catch {
    // Already reported; the checks after a failed one depend on it.
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(`# FI tiers: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed || results.length < 12 ? 1 : 0);
}
