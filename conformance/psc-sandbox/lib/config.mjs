// TEST FIXTURE. Reads and checks the stand-in's config file (contract C1); one clear error per bad key.
import fs from 'node:fs';
import path from 'node:path';

import { BUILTIN_IDENTITIES, identitiesFromConfig } from './identities.mjs';

const AUTH_METHODS = new Set(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth']);
const TLS_SUBJECT_KEYS = [
  'tls_client_auth_subject_dn',
  'tls_client_auth_san_dns',
  'tls_client_auth_san_ip',
  'tls_client_auth_san_email',
  'tls_client_auth_san_uri',
];

export const DEFAULT_AMR = { ecps: ['mobile', 'mfa'], card: ['sc', 'pin', 'mfa'] };

export function demoConfig() {
  return checkConfig(
    {
      listen: '127.0.0.1:8900',
      clients: [
        {
          client_id: 'vigie-demo',
          client_secret: 'vigie-demo-psc-secret',
          token_endpoint_auth_method: 'client_secret_basic',
          redirect_uris: ['https://127.0.0.1:8443/login/psc/callback'],
          // Vigie's own logout return (it carries on to the application's post-logout page).
          post_logout_redirect_uris: [
            'https://127.0.0.1:8443/',
            'https://127.0.0.1:8443/logout/psc',
            'https://localhost:8443/logout/psc',
          ],
        },
      ],
    },
    process.cwd(),
  );
}

export function loadConfig(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read config ${file}: ${err.message}`);
  }
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`config ${file} is not JSON: ${err.message}`);
  }
  return checkConfig(raw, path.dirname(path.resolve(file)));
}

function readPem(dir, key, value) {
  if (typeof value !== 'string' || !value) {
    throw new Error(`config: tls.${key} must be a file path`);
  }
  if (value.startsWith('-----BEGIN')) {
    return value;
  }
  const file = path.resolve(dir, value);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`config: tls.${key}: cannot read ${file}: ${err.message}`);
  }
}

function parseListen(listen) {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(listen ?? '');
  if (!m || Number(m[2]) > 65535) {
    throw new Error(`config: "listen" must be host:port (e.g. 127.0.0.1:0), got ${JSON.stringify(listen)}`);
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

function stringList(value, where, { required }) {
  if (value === undefined && !required) {
    return undefined;
  }
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || !v) || (required && value.length === 0)) {
    throw new Error(`config: ${where} must be a ${required ? 'non-empty ' : ''}list of strings`);
  }
  return value;
}

function checkClient(c, i, tls) {
  const where = `clients[${i}]`;
  if (!c || typeof c !== 'object') {
    throw new Error(`config: ${where} must be an object`);
  }
  if (typeof c.client_id !== 'string' || !c.client_id) {
    throw new Error(`config: ${where}.client_id must be a non-empty string`);
  }
  const method = c.token_endpoint_auth_method ?? 'client_secret_basic';
  if (!AUTH_METHODS.has(method)) {
    throw new Error(`config: ${where}.token_endpoint_auth_method must be one of ${[...AUTH_METHODS].join(', ')}`);
  }
  const out = {
    client_id: c.client_id,
    token_endpoint_auth_method: method,
    redirect_uris: stringList(c.redirect_uris, `${where}.redirect_uris`, { required: true }),
    post_logout_redirect_uris:
      stringList(c.post_logout_redirect_uris, `${where}.post_logout_redirect_uris`, {
        required: false,
      }) ?? [],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    id_token_signed_response_alg: 'RS256',
  };
  if (method.startsWith('client_secret_')) {
    if (typeof c.client_secret !== 'string' || c.client_secret.length < 8) {
      throw new Error(`config: ${where}.client_secret (8 characters or more) is needed for ${method}`);
    }
  }
  if (typeof c.client_secret === 'string') {
    out.client_secret = c.client_secret;
  }
  if (method === 'private_key_jwt') {
    if (!c.jwks?.keys?.length && typeof c.jwks_uri !== 'string') {
      throw new Error(`config: ${where}.jwks (public keys) or jwks_uri is needed for private_key_jwt`);
    }
  }
  if (c.jwks !== undefined) {
    if (!Array.isArray(c.jwks?.keys) || c.jwks.keys.some((k) => k.d !== undefined)) {
      throw new Error(`config: ${where}.jwks must be {"keys": [...]} with public keys only`);
    }
    out.jwks = c.jwks;
  }
  if (c.jwks_uri !== undefined) {
    out.jwks_uri = c.jwks_uri;
  }
  if (method === 'tls_client_auth') {
    if (!tls?.client_ca) {
      throw new Error(`config: ${where} uses tls_client_auth: "tls.client_ca" must be set`);
    }
    if (!TLS_SUBJECT_KEYS.some((k) => typeof c[k] === 'string')) {
      throw new Error(`config: ${where} uses tls_client_auth: set tls_client_auth_subject_dn (RFC 8705 §2.1.2)`);
    }
  }
  for (const k of TLS_SUBJECT_KEYS) {
    if (c[k] !== undefined) {
      if (typeof c[k] !== 'string' || !c[k]) {
        throw new Error(`config: ${where}.${k} must be a non-empty string`);
      }
      out[k] = c[k];
    }
  }
  if (c.userinfo_signed_response_alg !== undefined) {
    if (c.userinfo_signed_response_alg !== 'RS256') {
      throw new Error(`config: ${where}.userinfo_signed_response_alg: only RS256 is supported by the stand-in`);
    }
    out.userinfo_signed_response_alg = c.userinfo_signed_response_alg;
  }
  if (c.tls_client_certificate_bound_access_tokens !== undefined) {
    out.tls_client_certificate_bound_access_tokens = Boolean(c.tls_client_certificate_bound_access_tokens);
  }
  return out;
}

function checkAmr(amr) {
  if (amr === undefined) {
    return DEFAULT_AMR;
  }
  const out = { ...DEFAULT_AMR };
  for (const k of Object.keys(amr)) {
    if (!(k in DEFAULT_AMR)) {
      throw new Error(`config: amr.${k}: only "ecps" and "card" are known`);
    }
    out[k] = stringList(amr[k], `amr.${k}`, { required: true });
  }
  return out;
}

export function checkConfig(raw, dir) {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error('config: must be a JSON object');
  }
  const known = new Set(['listen', 'public_origin', 'tls', 'clients', 'identities', 'amr', 'signing_jwks', 'comment']);
  for (const k of Object.keys(raw)) {
    if (!known.has(k)) {
      throw new Error(`config: unknown key "${k}" (known: ${[...known].join(', ')})`);
    }
  }
  const listen = parseListen(raw.listen ?? '127.0.0.1:0');
  // Where RPs reach the stand-in when it is not its listen address (a TCP proxy a test cuts).
  let publicOrigin;
  if (raw.public_origin !== undefined) {
    let u;
    try {
      u = new URL(raw.public_origin);
    } catch {
      u = undefined;
    }
    if (!u || !['http:', 'https:'].includes(u.protocol) || u.origin !== raw.public_origin) {
      throw new Error(`config: "public_origin" must be an origin like http://127.0.0.1:8901, got ${JSON.stringify(raw.public_origin)}`);
    }
    publicOrigin = u.origin;
  }
  let tls;
  if (raw.tls !== undefined && raw.tls !== null) {
    tls = {
      cert: readPem(dir, 'cert', raw.tls.cert),
      key: readPem(dir, 'key', raw.tls.key),
      client_ca: raw.tls.client_ca === undefined ? undefined : readPem(dir, 'client_ca', raw.tls.client_ca),
    };
  }
  if (!Array.isArray(raw.clients) || raw.clients.length === 0) {
    throw new Error('config: "clients" must be a non-empty list');
  }
  const clients = raw.clients.map((c, i) => checkClient(c, i, tls));
  const ids = new Set();
  for (const c of clients) {
    if (ids.has(c.client_id)) {
      throw new Error(`config: client_id ${c.client_id} appears twice`);
    }
    ids.add(c.client_id);
  }
  const identities = raw.identities === undefined ? BUILTIN_IDENTITIES : identitiesFromConfig(raw.identities);
  let signingJwks;
  if (raw.signing_jwks !== undefined) {
    const keys = raw.signing_jwks?.keys;
    if (!Array.isArray(keys) || keys.length === 0 || keys.some((k) => k.kty !== 'RSA' || !k.d)) {
      throw new Error('config: signing_jwks must be {"keys": [RSA private JWKs]}');
    }
    signingJwks = raw.signing_jwks;
  }
  return { listen, publicOrigin, tls, clients, identities, amr: checkAmr(raw.amr), signingJwks };
}
