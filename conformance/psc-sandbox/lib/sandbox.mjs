// TEST FIXTURE. The PSC stand-in: oidc-provider configured like PSC (reference/psc.md §1), a scriptable login
// page, and a test-only control API (`/__control/…`) that pre-selects logins, records requests and makes the
// provider misbehave. Nothing here is meant to run outside tests and the demo.
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import querystring from 'node:querystring';

import * as jose from 'jose';
import Provider from 'oidc-provider';

import { SCOPE_ALL_CLAIMS, SUB_PREFIX } from './identities.mjs';
import { memoryStore } from './memory-store.mjs';
import { indexPage, interactionPage, messagePage } from './pages.mjs';

// PSC is a Keycloak realm: issuer `<origin>/auth/realms/esante-wallet`, endpoints under
// `<issuer>/protocol/openid-connect/…` (reference §1, ansforge/keycloak-prosanteconnect psc.properties).
export const ISSUER_PATH = '/auth/realms/esante-wallet';
const OIDC = '/protocol/openid-connect';
const DISCOVERY = '/.well-known/openid-configuration';
const WALLET_DISCOVERY = '/.well-known/wallet-openid-configuration';

const TOKEN_MODES = new Set(['wrong_iss', 'wrong_aud', 'expired', 'wrong_nonce', 'wrong_at_hash', 'alg_none', 'unknown_kid']);
const MODES = new Set([...TOKEN_MODES, 'userinfo_sub_mismatch', 'token_error', 'slow', 'down']);
const REDACTED = new Set([
  'client_secret',
  'client_assertion',
  'code',
  'code_verifier',
  'refresh_token',
  'token',
  'password',
]);
const LOG_MAX = 5000;
const BODY_MAX = 64 * 1024;

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

// Which stand-in endpoint a path (relative to the issuer) is, in the names of contract C1.
function endpointOf(rel) {
  if (rel === DISCOVERY) return 'discovery';
  if (!rel.startsWith(`${OIDC}/`)) return 'other';
  const tail = rel.slice(OIDC.length + 1);
  if (tail === 'auth') return 'auth';
  if (tail.startsWith('auth/')) return 'auth_resume';
  if (tail === 'token') return 'token';
  if (tail === 'token/introspect') return 'introspect';
  if (tail === 'userinfo') return 'userinfo';
  if (tail === 'certs') return 'jwks';
  if (tail === 'logout') return 'logout';
  if (tail.startsWith('logout/')) return 'logout_other';
  return 'other';
}

function endpointOfFull(pathname) {
  if (pathname.startsWith('/interaction/')) return 'interaction';
  if (pathname === `${ISSUER_PATH}${WALLET_DISCOVERY}`) return 'discovery';
  if (pathname.startsWith(`${ISSUER_PATH}/`)) return endpointOf(pathname.slice(ISSUER_PATH.length));
  return null;
}

function b64url(obj) {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

// OIDC Core §3.1.3.6: `at_hash` is the base64url left half of the access token's hash with the
// ID token's `alg` (SHA-256 for RS256). PSC is Keycloak, whose ID tokens carry it from the token
// endpoint too; oidc-provider puts it only in the front channel, so the stand-in adds it.
function atHash(accessToken, alg) {
  const bits = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }[String(alg).slice(-3)] ?? 'sha256';
  const digest = crypto.createHash(bits).update(accessToken).digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > BODY_MAX) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, type, body, extra = {}) {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, ...extra });
  res.end(body);
}

function sendJson(res, status, value) {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

function sleep(ms) {
  return new Promise((resolve) => {
    setTimeout(resolve, ms);
  });
}

// RFC 4514 §2.1: a DN string lists the RDNs last-to-first, separated by commas. Node prints a certificate's
// subject one RDN per line, first to last. Attribute types compare case-insensitively; values as written.
function splitDn(dn) {
  const parts = [];
  let cur = '';
  for (let i = 0; i < dn.length; i += 1) {
    const c = dn[i];
    if (c === '\\' && i + 1 < dn.length) {
      cur += c + dn[i + 1];
      i += 1;
    } else if (c === ',') {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts.map((rdn) => {
    const eq = rdn.indexOf('=');
    if (eq < 1) return rdn.trim();
    return `${rdn.slice(0, eq).trim().toUpperCase()}=${rdn.slice(eq + 1).trim()}`;
  });
}

export function certSubjectRfc4514(cert) {
  return cert.subject.split('\n').reverse().join(',');
}

function subjectDnMatches(cert, expected) {
  const want = splitDn(expected).join(',');
  const lines = cert.subject.split('\n');
  const rfc4514 = splitDn(lines.slice().reverse().join(',')).join(',');
  // Also accept the X.500 (first-to-last) order some registrations use; both name the same subject.
  const x500 = splitDn(lines.join(',')).join(',');
  return want === rfc4514 || want === x500;
}

function peerCertificate(socket) {
  if (typeof socket?.getPeerCertificate !== 'function') return undefined;
  const peer = socket.getPeerCertificate();
  if (!peer || !peer.raw) return undefined;
  return new crypto.X509Certificate(peer.raw);
}

export async function startSandbox(config) {
  // misbehave: rules {mode, times, ms, close, client_id?}; nextLogins: FIFO of pre-selected logins
  // {idnat, means, amr?, client_id?, redirect_uri?}, each taken by the first authorization request it matches.
  const state = { misbehave: [], nextLogins: [], log: [] };
  // Requests the stand-in makes to itself (the next-login shortcut) carry this; they are not logged twice.
  const internalToken = crypto.randomBytes(24).toString('base64url');

  const identities = config.identities;
  const bySub = new Map(identities.map((id) => [id.claims.sub, id]));
  const byIdnat = new Map(identities.map((id) => [id.idnat, id]));
  const scopeAllClaims = [
    ...new Set([...SCOPE_ALL_CLAIMS, ...identities.flatMap((id) => Object.keys(id.claims))]),
  ].filter((c) => c !== 'sub');

  let signingJwk;
  if (config.signingJwks) {
    [signingJwk] = config.signingJwks.keys;
  } else {
    const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    signingJwk = await jose.exportJWK(privateKey);
  }
  signingJwk = { ...signingJwk, alg: 'RS256', use: 'sig' };
  signingJwk.kid ??= await jose.calculateJwkThumbprint(signingJwk);
  const signingKey = await jose.importJWK(signingJwk, 'RS256');
  // `unknown_kid`: a key that is never published in the JWKS, made on first use.
  let rogue;

  const server = config.tls
    ? https.createServer({
        cert: config.tls.cert,
        key: config.tls.key,
        ...(config.tls.client_ca ? { ca: config.tls.client_ca } : {}),
        // Ask every client for a certificate but let the handshake through without one: the token endpoint
        // decides (tls_client_auth, RFC 8705 §2), other endpoints do not care.
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
      })
    : http.createServer();

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address();
  const hostInUrl = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const origin = config.publicOrigin ?? `${config.tls ? 'https' : 'http'}://${hostInUrl}:${port}`;
  const issuer = `${origin}${ISSUER_PATH}`;

  const cookieKeys = [crypto.randomBytes(32).toString('base64url')];
  const longCookie = { httpOnly: true, sameSite: 'lax', signed: true, path: '/' };

  const provider = new Provider(issuer, {
    adapter: memoryStore(),
    clients: config.clients,
    // PSC's lifetimes are not public (reference §1): short ones, so a load test does not pile up state.
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    // Vigie calls the stand-in from its server, never from a browser script.
    clientBasedCORS: () => false,
    jwks: { keys: [signingJwk] },
    findAccount: async (_ctx, sub) => {
      const identity = bySub.get(sub);
      if (!identity) return undefined;
      return { accountId: sub, claims: async () => structuredClone(identity.claims) };
    },
    claims: { openid: ['sub', 'amr'], scope_all: scopeAllClaims },
    scopes: ['openid', 'scope_all'],
    acrValues: ['eidas1'],
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth'],
    // RFC 7636: every authorization request must carry an S256 code_challenge, like the ANS POC RP sends.
    pkce: { required: () => true },
    routes: {
      authorization: `${OIDC}/auth`,
      token: `${OIDC}/token`,
      userinfo: `${OIDC}/userinfo`,
      jwks: `${OIDC}/certs`,
      end_session: `${OIDC}/logout`,
      introspection: `${OIDC}/token/introspect`,
      revocation: `${OIDC}/revoke`,
      pushed_authorization_request: `${OIDC}/ext/par/request`,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: cookieKeys, long: longCookie, short: { httpOnly: true, sameSite: 'lax', signed: true } },
    features: {
      devInteractions: { enabled: false },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      jwtUserinfo: { enabled: true },
      mTLS: {
        enabled: true,
        tlsClientAuth: true,
        certificateBoundAccessTokens: true,
        getCertificate: (ctx) => peerCertificate(ctx.req.socket),
        // RFC 8705 §2.1: the PKI method needs a chain that validates to a trusted CA (`tls.client_ca`).
        certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
        certificateSubjectMatches: (ctx, property, expected) => {
          const cert = peerCertificate(ctx.req.socket);
          if (!cert) return false;
          const san = (cert.subjectAltName ?? '').split(', ');
          switch (property) {
            case 'tls_client_auth_subject_dn':
              return subjectDnMatches(cert, expected);
            case 'tls_client_auth_san_dns':
              return san.includes(`DNS:${expected}`);
            case 'tls_client_auth_san_uri':
              return san.includes(`URI:${expected}`);
            case 'tls_client_auth_san_ip':
              return san.includes(`IP Address:${expected}`);
            case 'tls_client_auth_san_email':
              return san.includes(`email:${expected}`);
            default:
              return false;
          }
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        // Never shown: the middleware below ends the session at once (no confirmation in the stand-in).
        logoutSource: async (ctx, form) => {
          ctx.body = form;
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = messagePage('Déconnexion', 'Vous êtes déconnecté de Pro Santé Connect (bac à sable).');
        },
      },
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = messagePage('Erreur', `${out.error}: ${out.error_description ?? ''}`);
    },
  });
  provider.proxy = false;
  provider.on('server_error', (_ctx, err) => {
    process.stderr.write(`psc-sandbox: server_error: ${err.stack || err}\n`);
  });

  function record(entry) {
    state.log.push(entry);
    if (state.log.length > LOG_MAX) state.log.splice(0, state.log.length - LOG_MAX);
  }

  function active(mode) {
    return state.misbehave.some((r) => r.mode === mode);
  }

  // Uses up one application of the first rule for `mode` that applies to this client.
  function take(mode, clientId) {
    const i = state.misbehave.findIndex(
      (r) => r.mode === mode && (r.client_id === undefined || r.client_id === clientId),
    );
    if (i < 0) return undefined;
    const rule = state.misbehave[i];
    rule.times -= 1;
    if (rule.times <= 0) state.misbehave.splice(i, 1);
    return rule;
  }

  function pendingLoginFor(query) {
    return state.nextLogins.find(
      (p) =>
        (p.client_id === undefined || p.client_id === query.client_id) &&
        (p.redirect_uri === undefined || p.redirect_uri === query.redirect_uri),
    );
  }

  // The client a token request is from, before oidc-provider has authenticated it: from HTTP Basic
  // (RFC 6749 §2.3.1, form-urlencoded then base64), else from the form body, which is then read here and
  // handed to oidc-provider already parsed.
  async function tokenRequestClientId(ctx) {
    const basic = /^basic (.+)$/i.exec(ctx.get('authorization'));
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      try {
        return decodeURIComponent(decoded.split(':')[0].replace(/\+/g, ' '));
      } catch {
        return undefined;
      }
    }
    if (!ctx.is('application/x-www-form-urlencoded')) return undefined;
    const form = { ...querystring.parse(await readBody(ctx.req)) };
    ctx.req.body = form;
    if (typeof form.client_id === 'string') return form.client_id;
    try {
      return jose.decodeJwt(String(form.client_assertion)).sub;
    } catch {
      return undefined;
    }
  }

  async function rewriteIdToken(jwt, modes, accessToken) {
    const header = jose.decodeProtectedHeader(jwt);
    const payload = jose.decodeJwt(jwt);
    const now = Math.floor(Date.now() / 1000);
    if (typeof accessToken === 'string') payload.at_hash = atHash(accessToken, header.alg);
    if (modes.has('wrong_at_hash')) payload.at_hash = atHash(crypto.randomBytes(16).toString('hex'), header.alg);
    if (modes.has('wrong_iss')) payload.iss = 'https://auth.evil.example/auth/realms/esante-wallet';
    if (modes.has('wrong_aud')) payload.aud = 'another-client';
    if (modes.has('expired')) {
      payload.iat = now - 7200;
      payload.exp = now - 3600;
    }
    if (modes.has('wrong_nonce')) payload.nonce = crypto.randomBytes(16).toString('hex');
    if (modes.has('alg_none')) {
      // RFC 7519 §6: an Unsecured JWT, `alg: none` and an empty signature.
      return `${b64url({ alg: 'none', typ: header.typ ?? 'JWT' })}.${b64url(payload)}.`;
    }
    if (modes.has('unknown_kid')) {
      if (!rogue) {
        const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048 });
        rogue = { key: privateKey, kid: `rogue-${crypto.randomBytes(8).toString('hex')}` };
      }
      return new jose.SignJWT(payload).setProtectedHeader({ ...header, kid: rogue.kid }).sign(rogue.key);
    }
    return new jose.SignJWT(payload).setProtectedHeader(header).sign(signingKey);
  }

  function activeTokenModes(clientId) {
    const modes = new Set();
    for (const mode of TOKEN_MODES) {
      if (take(mode, clientId)) modes.add(mode);
    }
    return modes;
  }

  async function loginResult(interaction, pick) {
    const identity = byIdnat.get(pick.idnat);
    const grant = new provider.Grant({ accountId: identity.claims.sub, clientId: interaction.params.client_id });
    const scope = String(interaction.params.scope ?? 'openid')
      .split(' ')
      .filter((s) => s === 'openid' || s === 'scope_all');
    grant.addOIDCScope(scope.join(' '));
    const grantId = await grant.save();
    return {
      login: {
        accountId: identity.claims.sub,
        acr: 'eidas1',
        amr: pick.amr ?? config.amr[pick.means],
        remember: true,
      },
      consent: { grantId },
    };
  }

  function selfRequest(url, cookie) {
    return new Promise((resolve, reject) => {
      const target = new URL(url);
      // The stand-in calling its own listener (same origin it just redirected to): no certificate check needed.
      const req = (target.protocol === 'https:' ? https : http).request(
        target,
        { method: 'GET', headers: { cookie, 'x-psc-sandbox-internal': internalToken }, rejectUnauthorized: false },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  function cookieHeader(incoming, setCookies) {
    const jar = new Map();
    for (const part of (incoming ?? '').split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0) jar.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
    for (const sc of [setCookies ?? []].flat()) {
      const first = sc.split(';')[0];
      const eq = first.indexOf('=');
      if (eq > 0) jar.set(first.slice(0, eq).trim(), first.slice(eq + 1).trim());
    }
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  function oidcOf(ctx) {
    return Object.getOwnPropertyDescriptor(ctx, 'oidc') ? ctx.oidc : undefined;
  }

  // What the client used to authenticate to the token (or introspection) endpoint, as seen on the wire.
  function clientAuthOf(ctx, body) {
    const authz = ctx.get('authorization');
    if (/^basic /i.test(authz)) return 'client_secret_basic';
    if (/^(bearer|dpop) /i.test(authz)) return 'bearer';
    if (typeof body.client_assertion === 'string') {
      try {
        return jose.decodeProtectedHeader(body.client_assertion).alg?.startsWith('HS')
          ? 'client_secret_jwt'
          : 'private_key_jwt';
      } catch {
        return 'client_assertion_unreadable';
      }
    }
    if (typeof body.client_secret === 'string') return 'client_secret_post';
    if (peerCertificate(ctx.req.socket)) return 'tls_client_auth';
    return 'none';
  }

  function redact(params) {
    const out = {};
    for (const [k, v] of Object.entries(params)) {
      out[k] = REDACTED.has(k) ? '<redacted>' : v;
    }
    return out;
  }

  // TEST-ONLY middleware, first in oidc-provider's chain: request log, misbehaviour, logout without a
  // confirmation page, and the next-login shortcut.
  provider.use(async (ctx, next) => {
    if (ctx.get('x-psc-sandbox-internal') === internalToken) {
      await next();
      return;
    }
    const endpoint = ctx.req.pscWalletDiscovery ? 'discovery' : endpointOf(ctx.path);
    const entry = {
      at: new Date().toISOString(),
      endpoint,
      method: ctx.method,
      path: ctx.req.pscPath ?? ctx.path,
    };
    const cert = peerCertificate(ctx.req.socket);
    if (cert) {
      entry.tls_client_cert = certSubjectRfc4514(cert);
      entry.tls_client_cert_authorized = ctx.req.socket.authorized === true;
    }
    const query = { ...ctx.query };

    try {
      if (endpoint === 'auth' && pendingLoginFor(query) && query.prompt !== 'none') {
        // A pre-selected login replaces any session the user agent still has with the stand-in.
        ctx.query = { ...query, prompt: 'login' };
        ctx.req.originalUrl = `${ISSUER_PATH}${ctx.url}`;
      }
      if (endpoint === 'token' && active('token_error') && take('token_error', await tokenRequestClientId(ctx))) {
        entry.misbehave = 'token_error';
        ctx.status = 500;
        ctx.body = { error: 'server_error', error_description: 'psc-sandbox misbehave: token_error (test only)' };
        return;
      }

      await next();

      const oidc = oidcOf(ctx);
      const body = oidc?.body && typeof oidc.body === 'object' ? oidc.body : {};
      if (endpoint === 'token' || endpoint === 'introspect' || endpoint === 'userinfo') {
        entry.client_auth = clientAuthOf(ctx, body);
      }
      if (typeof body.client_assertion === 'string') {
        try {
          const { iss, sub, aud, exp, jti } = jose.decodeJwt(body.client_assertion);
          entry.client_assertion = {
            alg: jose.decodeProtectedHeader(body.client_assertion).alg,
            iss,
            sub,
            aud,
            exp,
            jti,
          };
        } catch {
          entry.client_assertion = { unreadable: true };
        }
      }
      entry.client_id = oidc?.client?.clientId ?? body.client_id ?? query.client_id;
      entry.params = redact({ ...query, ...body });

      if (endpoint === 'token' && ctx.status === 200 && typeof ctx.body?.id_token === 'string') {
        const modes = activeTokenModes(oidc.client?.clientId);
        if (modes.size > 0) entry.misbehave = [...modes].join(',');
        // Every ID token of the token endpoint gets its `at_hash`, as PSC's (Keycloak) do.
        ctx.body = { ...ctx.body, id_token: await rewriteIdToken(ctx.body.id_token, modes, ctx.body.access_token) };
      }

      if (endpoint === 'userinfo' && ctx.status === 200 && take('userinfo_sub_mismatch', oidc?.client?.clientId)) {
        entry.misbehave = 'userinfo_sub_mismatch';
        const otherSub = `${SUB_PREFIX}899999999999`;
        if (typeof ctx.body === 'string') {
          const header = jose.decodeProtectedHeader(ctx.body);
          const payload = { ...jose.decodeJwt(ctx.body), sub: otherSub };
          const type = ctx.type;
          ctx.body = await new jose.SignJWT(payload).setProtectedHeader(header).sign(signingKey);
          ctx.type = type;
        } else {
          ctx.body = { ...ctx.body, sub: otherSub };
        }
      }

      // OpenID Connect RP-Initiated Logout 1.0 §2–§3: the OP may ask the user to confirm; the stand-in
      // does not, so a script following redirects lands on post_logout_redirect_uri (with `state`).
      if (endpoint === 'logout' && ctx.status === 200 && oidc?.session) {
        await endSession(ctx, oidc);
        entry.logged_out = true;
      }

      const pick = endpoint === 'auth' && ctx.status === 303 ? pendingLoginFor(query) : undefined;
      if (pick && oidc?.entities?.Interaction) {
        state.nextLogins.splice(state.nextLogins.indexOf(pick), 1);
        entry.next_login = pick.idnat;
        await completeAtOnce(ctx, oidc.entities.Interaction, pick);
      }
    } finally {
      entry.status = ctx.status;
      if (!entry.params) entry.params = redact(query);
      record(entry);
    }
  });

  async function endSession(ctx, oidc) {
    const { session } = oidc;
    const st = session.state ?? {};
    for (const { grantId } of Object.values(session.authorizations ?? {})) {
      if (grantId) {
        await Promise.all(
          [provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode].map((m) =>
            m.revokeByGrantId(grantId),
          ),
        );
        await provider.Grant.adapter.destroy(grantId);
      }
    }
    await session.destroy();
    ctx.cookies.set(provider.cookieName('session'), null, longCookie);
    if (st.postLogoutRedirectUri) {
      const target = new URL(st.postLogoutRedirectUri);
      if (st.state != null) target.searchParams.set('state', st.state);
      ctx.redirect(target.href);
      ctx.status = 302;
    } else {
      ctx.type = 'html';
      ctx.body = messagePage('Déconnexion', 'Vous êtes déconnecté de Pro Santé Connect (bac à sable).');
    }
  }

  // `__control/next-login`: finish the interaction the authorization request just opened, run the resume
  // step on our own listener, and answer the user agent with the final redirect to the RP (code and state).
  async function completeAtOnce(ctx, interaction, pick) {
    interaction.result = await loginResult(interaction, pick);
    await interaction.save(Math.max(interaction.exp - Math.floor(Date.now() / 1000), 1));
    const res = await selfRequest(
      interaction.returnTo,
      cookieHeader(ctx.get('cookie'), ctx.response.get('set-cookie')),
    );
    const location = res.headers.location;
    if (!location) throw new Error(`next-login: resume answered ${res.statusCode} without a redirect`);
    for (const sc of res.headers['set-cookie'] ?? []) ctx.append('Set-Cookie', sc);
    ctx.redirect(location);
    ctx.status = 302;
  }

  const providerCallback = provider.callback();

  async function interactionRoute(req, res, url, entry) {
    const m = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/approve|\/abort)?$/.exec(url.pathname);
    if (!m) {
      send(res, 404, 'text/html; charset=utf-8', messagePage('Introuvable', 'Cette page n’existe pas.'));
      return;
    }
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      send(res, 400, 'text/html; charset=utf-8', messagePage('Session expirée', 'Recommencez depuis le service.'));
      return;
    }
    if (details.uid !== m[1]) {
      send(res, 400, 'text/html; charset=utf-8', messagePage('Session expirée', 'Recommencez depuis le service.'));
      return;
    }
    const list = identities.map(({ idnat, label }) => ({ idnat, label }));
    if (!m[2] && req.method === 'GET') {
      const html = interactionPage({
        uid: details.uid,
        clientId: details.params.client_id,
        scope: details.params.scope,
        identities: list,
      });
      send(res, 200, 'text/html; charset=utf-8', html, {
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
      });
      return;
    }
    if (req.method !== 'POST') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed', { allow: 'POST' });
      return;
    }
    const form = querystring.parse(await readBody(req));
    entry.params = redact({ ...form });
    if (m[2] === '/abort') {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the professional refused on the stand-in page' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const idnat = typeof form.idnat === 'string' ? form.idnat : '';
    const means = form.means === undefined ? 'ecps' : form.means;
    if (!byIdnat.has(idnat) || (means !== 'ecps' && means !== 'card')) {
      const html = interactionPage({
        uid: details.uid,
        clientId: details.params.client_id,
        scope: details.params.scope,
        identities: list,
        error: 'Identité ou moyen inconnu : choisissez dans la liste.',
      });
      send(res, 400, 'text/html; charset=utf-8', html);
      return;
    }
    const result = await loginResult(details, { idnat, means });
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }

  async function controlRoute(req, res, url) {
    const route = `${req.method} ${url.pathname}`;
    let input = {};
    if (req.method === 'POST') {
      const text = await readBody(req);
      if (text.trim()) {
        try {
          input = JSON.parse(text);
        } catch {
          sendJson(res, 400, { error: 'body must be JSON' });
          return;
        }
      }
      if (!input || typeof input !== 'object' || Array.isArray(input)) {
        sendJson(res, 400, { error: 'body must be a JSON object' });
        return;
      }
    }
    switch (route) {
      case 'GET /__control/log': {
        const only = url.searchParams.get('endpoint');
        sendJson(res, 200, only ? state.log.filter((e) => e.endpoint === only) : state.log);
        return;
      }
      case 'GET /__control/identities':
        sendJson(
          res,
          200,
          identities.map(({ idnat, label, claims }) => ({ idnat, label, sub: claims.sub })),
        );
        return;
      case 'POST /__control/reset':
        state.misbehave.length = 0;
        state.nextLogins.length = 0;
        state.log.length = 0;
        sendJson(res, 200, { ok: true });
        return;
      case 'POST /__control/next-login': {
        const means = input.means ?? 'ecps';
        if (typeof input.idnat !== 'string' || !byIdnat.has(input.idnat)) {
          sendJson(res, 400, { error: `unknown idnat ${JSON.stringify(input.idnat)}`, known: [...byIdnat.keys()] });
          return;
        }
        if (means !== 'ecps' && means !== 'card') {
          sendJson(res, 400, { error: 'means must be "ecps" or "card"' });
          return;
        }
        if (input.amr !== undefined && (!Array.isArray(input.amr) || input.amr.some((a) => typeof a !== 'string'))) {
          sendJson(res, 400, { error: 'amr must be a list of strings' });
          return;
        }
        for (const k of ['client_id', 'redirect_uri']) {
          if (input[k] !== undefined && (typeof input[k] !== 'string' || !input[k])) {
            sendJson(res, 400, { error: `${k} must be a non-empty string` });
            return;
          }
        }
        const pick = {
          idnat: input.idnat,
          means,
          amr: input.amr,
          client_id: input.client_id,
          redirect_uri: input.redirect_uri,
        };
        if (input.queue !== undefined && typeof input.queue !== 'boolean') {
          sendJson(res, 400, { error: 'queue must be true or false' });
          return;
        }
        // C1: a new pre-selection replaces the pending one (for the same client_id / redirect_uri), so one left
        // over by a login that never reached the stand-in cannot leak into the next test. `queue: true` appends.
        if (input.queue !== true) {
          state.nextLogins = state.nextLogins.filter(
            (p) => p.client_id !== pick.client_id || p.redirect_uri !== pick.redirect_uri,
          );
        }
        state.nextLogins.push(pick);
        sendJson(res, 200, { ok: true, next_login: pick, queued: state.nextLogins.length });
        return;
      }
      case 'POST /__control/misbehave': {
        const { mode } = input;
        if (!MODES.has(mode)) {
          sendJson(res, 400, { error: `mode must be one of ${[...MODES].join(', ')}` });
          return;
        }
        const persistent = mode === 'slow' || mode === 'down';
        const times = input.times ?? (persistent ? Infinity : 1);
        if (!(Number.isInteger(times) && times > 0) && times !== Infinity) {
          sendJson(res, 400, { error: 'times must be a positive integer' });
          return;
        }
        const ms = input.ms ?? 2000;
        if (mode === 'slow' && !(Number.isInteger(ms) && ms >= 0 && ms <= 120000)) {
          sendJson(res, 400, { error: 'ms must be an integer between 0 and 120000' });
          return;
        }
        if (input.client_id !== undefined && (typeof input.client_id !== 'string' || persistent)) {
          sendJson(res, 400, {
            error: 'client_id must be a string, and cannot narrow slow or down (PSC is down for all)',
          });
          return;
        }
        const rule = { mode, times, ms, close: input.close === true, client_id: input.client_id };
        const same = state.misbehave.findIndex((r) => r.mode === mode && r.client_id === rule.client_id);
        if (same >= 0) state.misbehave.splice(same, 1, rule);
        else state.misbehave.push(rule);
        sendJson(res, 200, { ok: true, active: state.misbehave });
        return;
      }
      default:
        sendJson(res, 404, {
          error: 'unknown control route',
          routes: [
            'POST /__control/next-login',
            'POST /__control/misbehave',
            'GET /__control/log',
            'POST /__control/reset',
          ],
        });
    }
  }

  async function handle(req, res) {
    const url = new URL(req.url, origin);
    if (url.pathname.startsWith('/__control/')) {
      await controlRoute(req, res, url);
      return;
    }
    const endpoint = endpointOfFull(url.pathname);
    const internal = req.headers['x-psc-sandbox-internal'] === internalToken;
    if (endpoint && !internal) {
      const slow = take('slow');
      if (slow) await sleep(slow.ms);
      const down = take('down');
      if (down) {
        record({
          at: new Date().toISOString(),
          endpoint,
          method: req.method,
          path: url.pathname,
          misbehave: 'down',
          status: down.close ? 0 : 503,
          params: redact(Object.fromEntries(url.searchParams)),
        });
        if (down.close) {
          req.socket.destroy();
        } else {
          sendJson(res, 503, {
            error: 'temporarily_unavailable',
            error_description: 'psc-sandbox misbehave: down (test only)',
          });
        }
        return;
      }
    }
    if (url.pathname.startsWith('/interaction/')) {
      const entry = {
        at: new Date().toISOString(),
        endpoint: 'interaction',
        method: req.method,
        path: url.pathname,
        params: {},
      };
      try {
        await interactionRoute(req, res, url, entry);
      } finally {
        entry.status = res.statusCode;
        if (!internal) record(entry);
      }
      return;
    }
    if (url.pathname === ISSUER_PATH || url.pathname.startsWith(`${ISSUER_PATH}/`)) {
      // Mount oidc-provider under the issuer path, the way express mounts it (req.originalUrl + req.url).
      let rel = req.url.slice(ISSUER_PATH.length) || '/';
      if (url.pathname === `${ISSUER_PATH}${WALLET_DISCOVERY}`) {
        // PSC publishes its metadata at this non-standard path (reference §1): same document.
        rel = `${DISCOVERY}${url.search}`;
        req.pscWalletDiscovery = true;
      }
      req.pscPath = url.pathname;
      req.baseUrl = ISSUER_PATH; // oidc-provider's fallback mount path when req.url is rewritten below it
      req.originalUrl = `${ISSUER_PATH}${rel}`;
      req.url = rel;
      await providerCallback(req, res);
      return;
    }
    if (url.pathname === '/' && req.method === 'GET') {
      send(res, 200, 'text/html; charset=utf-8', indexPage(issuer));
      return;
    }
    sendJson(res, 404, { error: 'not found', issuer });
  }

  server.on('request', (req, res) => {
    handle(req, res).catch((err) => {
      process.stderr.write(`psc-sandbox: ${req.method} ${JSON.stringify(req.url)}: ${err.stack || err}\n`);
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.destroy();
    });
  });

  return {
    issuer,
    origin,
    provider,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
