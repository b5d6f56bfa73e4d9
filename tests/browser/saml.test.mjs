// The SAML IdP's auto-posting pages in a real browser (Debian's Chromium, playwright-core): a
// small SP on another origin (http://127.0.0.1:<port>, allowed on the loopback), registered from
// its metadata file (`[[saml.sps]]`, its OIDC client by VIGIE_CLIENTS), sends the browser to
// Vigie with an AuthnRequest; the demo nurse logs in with password + TOTP; Vigie's page posts the
// Response to the SP's ACS under its nonce CSP, and the ACS's 302 to another path of the SP is
// followed; so is its 303 to an application on another origin (https://127.0.0.1:<port>, the
// RelayState's). Then Vigie's /logout (asked by the SP's OIDC client, with a
// post_logout_redirect_uri on that application) tells a second SP first, by HTTP-Redirect on the
// application's origin, straight from the confirmation's POST; then posts a signed LogoutRequest to
// the first SP's SingleLogoutService, which answers with a 303 back to Vigie's /saml/slo (a signed
// LogoutResponse by HTTP-Redirect), and Vigie sends the browser on to the application. Chromium
// applies `form-action` to every redirect that follows a post: any CSP violation (the page's
// `securitypolicyviolation` events, its console) fails.
//
//   npm ci && node --test saml.test.mjs   (a vigie built with --features vigie-gateway/saml, as tests/run builds it)
import assert from 'node:assert/strict';
import { randomBytes, sign } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';

import { settledAudit, startDemo, totp } from '../oidc-client/vigie-demo.mjs';
import { launchChromium } from './chromium.mjs';
import { closeAll, formAction, formOf, selfSigned, watchedContext } from './watch.mjs';

const PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
const HTTP_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const HTTP_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const RELAY = '/dossiers/42?onglet=résultats';

let demo;
let browser;
let ctx;
let tmp;
let sp;
let app;
/** CSP violations and console errors of every page of the context. */
const problems = [];

const instant = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const newId = () => `_${randomBytes(16).toString('hex')}`;
const xmlOf = (b64) => Buffer.from(b64, 'base64').toString('utf8');
/** The attribute `name` of the first `<…:local …>` element of `xml`. */
const attr = (xml, local, name) => xml.match(new RegExp(`<(?:\\w+:)?${local}\\b[^>]*?\\s${name}="([^"]*)"`))?.[1];

/** Where an SP sends the browser with its answer to Vigie's LogoutRequest `request` (XML): a
 *  LogoutResponse by HTTP-Redirect, signed RSA-SHA256 over the query (saml-bindings §3.4.4.1). */
function logoutResponse(issuer, request, relay, keyPem) {
  const inResponseTo = attr(request, 'LogoutRequest', 'ID');
  const xml = `<samlp:LogoutResponse xmlns:samlp="${PROTOCOL}" xmlns:saml="${ASSERTION}" ID="${newId()}" Version="2.0" IssueInstant="${instant()}" Destination="${demo.issuer}/saml/slo" InResponseTo="${inResponseTo}"><saml:Issuer>${issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="${SUCCESS}"/></samlp:Status></samlp:LogoutResponse>`;
  const enc = encodeURIComponent;
  let query = `SAMLResponse=${enc(zlib.deflateRawSync(xml).toString('base64'))}`;
  if (relay !== undefined && relay !== null) query += `&RelayState=${enc(relay)}`;
  query += `&SigAlg=${enc(RSA_SHA256)}`;
  const signature = sign('sha256', Buffer.from(query), keyPem).toString('base64');
  return `${demo.issuer}/saml/slo?${query}&Signature=${enc(signature)}`;
}

/**
 * The SP: `/login` sends the browser to Vigie with an AuthnRequest (HTTP-Redirect, unsigned);
 * `/acs` takes the posted Response and answers 302 to `/app/welcome`; `/slo` takes Vigie's
 * posted LogoutRequest and answers 303 to Vigie with its LogoutResponse (HTTP-Redirect, signed
 * RSA-SHA256 over the query, saml-bindings §3.4.4.1). Every request it gets is kept in `received`.
 */
async function startSp(keyPem) {
  const received = [];
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, self.base);
    const fields = req.method === 'POST' ? await formOf(req) : {};
    received.push({ method: req.method, path: url.pathname, fields, origin: req.headers.origin });
    const redirect = (status, location) => {
      res.writeHead(status, { location, 'cache-control': 'no-store' });
      res.end();
    };
    if (req.method === 'GET' && url.pathname === '/login') {
      // The RelayState: where the SP sends the person once signed in (`?to=`, else a page of its own).
      const relay = url.searchParams.get('to') ?? RELAY;
      // `?as=2`: the request of the second SP (its entityID), which this server plays too.
      const issuer = url.searchParams.get('as') === '2' ? self.entityId2 : self.entityId;
      const id = newId();
      requests.push(id);
      const xml = `<samlp:AuthnRequest xmlns:samlp="${PROTOCOL}" xmlns:saml="${ASSERTION}" ID="${id}" Version="2.0" IssueInstant="${instant()}" Destination="${demo.issuer}/saml/sso" AssertionConsumerServiceURL="${self.base}/acs" ProtocolBinding="${HTTP_POST}"><saml:Issuer>${issuer}</saml:Issuer></samlp:AuthnRequest>`;
      const query = new URLSearchParams({ SAMLRequest: zlib.deflateRawSync(xml).toString('base64'), RelayState: relay });
      return redirect(303, `${demo.issuer}/saml/sso?${query}`);
    }
    // An absolute RelayState is an application of its own on another origin (303 there); any
    // other, a page of the SP (302).
    if (req.method === 'POST' && url.pathname === '/acs') {
      return fields.RelayState?.startsWith('https://') ? redirect(303, fields.RelayState) : redirect(302, '/app/welcome');
    }
    if (req.method === 'GET' && url.pathname === '/app/welcome') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end('<!doctype html><html lang="fr"><title>SP</title><h1>Application SAML</h1></html>');
    }
    if (req.method === 'POST' && url.pathname === '/slo' && fields.SAMLRequest) {
      return redirect(303, logoutResponse(self.entityId, xmlOf(fields.SAMLRequest), fields.RelayState, keyPem));
    }
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const self = {
    base, entityId: `${base}/saml`, entityId2: `${base}/saml2`, received, requests, close: () => new Promise((r) => server.close(r)),
  };
  return self;
}

/** The application the SP serves, on another origin (https, its own certificate): the pages
 *  it is asked for are kept in `visited`. */
async function startApp(key, cert) {
  const visited = [];
  const server = https.createServer({ key, cert }, (req, res) => {
    const url = new URL(req.url, 'https://app');
    visited.push(url.pathname);
    // The second SP's SingleLogoutService, HTTP-Redirect, here on the application's origin.
    if (url.pathname === '/slo') {
      const request = zlib.inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest'), 'base64')).toString('utf8');
      res.writeHead(303, { location: logoutResponse(sp.entityId2, request, url.searchParams.get('RelayState'), key) });
      return res.end();
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="fr"><title>App</title><h1>Application ${req.url.startsWith('/bye') ? 'quittée' : 'ouverte'}</h1></html>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `https://127.0.0.1:${server.address().port}`, visited, close: () => new Promise((r) => server.close(r)) };
}

/** The SP's metadata (saml-metadata §2.4.4): its signing certificate, an HTTP-POST
 *  AssertionConsumerService, and its SingleLogoutService (`slo`: Binding and Location). */
function spMetadata(entityId, certPem, slo) {
  const der = certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${entityId}"><md:SPSSODescriptor protocolSupportEnumeration="${PROTOCOL}" AuthnRequestsSigned="false" WantAssertionsSigned="true"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${der}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService Binding="${slo[0]}" Location="${slo[1]}"/><md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat><md:AssertionConsumerService Binding="${HTTP_POST}" Location="${sp.base}/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>`;
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vigie-saml-browser-'));
  const { keyPem, certPem } = selfSigned(tmp, 'browser-sp');
  sp = await startSp(keyPem);
  app = await startApp(keyPem, certPem);
  const metadata = path.join(tmp, 'sp-md.xml');
  fs.writeFileSync(metadata, spMetadata(sp.entityId, certPem, [HTTP_POST, `${sp.base}/slo`]));
  // A second SP (another entityID, the same server and key), whose SingleLogoutService is
  // HTTP-Redirect on the application's origin.
  const metadata2 = path.join(tmp, 'sp2-md.xml');
  fs.writeFileSync(metadata2, spMetadata(sp.entityId2, certPem, [HTTP_REDIRECT, `${app.base}/slo`]));
  demo = await startDemo({
    label: 'vigie-saml-browser',
    // The SP's OIDC client lists Vigie's SAML callback (its issuer names the port), and the
    // application's page for after a logout.
    env: (port) => ({
      VIGIE_CLIENTS: `[{client_id="browser-sp", auth_method="none", redirect_uris=["https://localhost:${port}/saml/callback"], post_logout_redirect_uris=["${app.base}/bye"]}, {client_id="browser-sp2", auth_method="none", redirect_uris=["https://localhost:${port}/saml/callback"]}]`,
      VIGIE_SAML__SPS: `[{metadata="${metadata}", client_id="browser-sp", nameid="persistent", attributes=["given_name", "family_name", "mie"]}, {metadata="${metadata2}", client_id="browser-sp2"}]`,
    }),
  });
  browser = await launchChromium();
  ctx = await watchedContext(browser, problems);
}, { timeout: 75_000 });

after(() => closeAll({ ctx, browser, demo, servers: [sp, app], tmp }), { timeout: 15_000 });

/** A test on a new page of the context, which also fails on any CSP violation or console
 *  error seen while it ran. */
function flowTest(name, fn) {
  test(name, { timeout: 60_000 }, async () => {
    problems.length = 0;
    const page = await ctx.newPage();
    await fn(page);
    assert.deepEqual(problems, [], 'no CSP violation, no console error');
    await page.close();
  });
}

flowTest('the nurse signs in to a SAML SP on another origin: the Response is posted to its ACS under the nonce CSP and its 302 followed', async (page) => {
  const nurse = demo.info.users.find((u) => u.username === 'demo.infirmiere');
  assert.ok(nurse, 'demo.json has demo.infirmiere');
  const callbacks = [];
  page.on('response', (r) => { if (new URL(r.url()).pathname === '/saml/callback') callbacks.push(r); });

  // The SP sends the browser to Vigie, which shows its login page.
  await page.goto(`${sp.base}/login`);
  const login = new URL(page.url());
  assert.equal(login.origin, new URL(demo.issuer).origin, `Vigie's login page, got ${page.url()}`);
  assert.equal(login.pathname, '/login', `Vigie's login page, got ${page.url()}`);
  await page.getByLabel('Identifiant', { exact: true }).fill(nurse.username);
  await page.getByLabel('Mot de passe', { exact: true }).fill(nurse.password);
  await page.getByLabel('Code à usage unique', { exact: true }).fill(await totp(nurse.totp_secret));
  await page.getByRole('button', { name: 'Se connecter', exact: true }).click();

  // The callback's page posts the Response to the ACS; the ACS's 302 lands on the SP's page.
  await page.waitForURL(`${sp.base}/app/welcome`);
  await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Application SAML' }).waitFor());
  assert.equal(callbacks.length, 1, 'one auto-posting page');
  assert.equal(callbacks[0].status(), 200);
  assert.deepEqual(formAction(callbacks[0]), [sp.base, 'https:'], 'the page posts to the SP\'s origin (and follows https redirects)');

  const posted = sp.received.filter((r) => r.method === 'POST' && r.path === '/acs');
  assert.equal(posted.length, 1, 'the ACS got one POST');
  const { fields, origin } = posted[0];
  // Vigie's pages say `Referrer-Policy: no-referrer`: Chromium then sends `Origin: null` with the
  // post, so an ACS cannot (and must not) require Vigie's origin there.
  assert.equal(origin, 'null', 'posted from Vigie\'s page, its origin withheld');
  assert.equal(fields.RelayState, RELAY, 'the RelayState comes back as sent');
  assert.ok(fields.SAMLResponse, 'a SAMLResponse');
  const xml = xmlOf(fields.SAMLResponse);
  assert.equal(attr(xml, 'StatusCode', 'Value'), SUCCESS, xml);
  assert.equal(attr(xml, 'Response', 'InResponseTo'), sp.requests.at(-1), xml);
  assert.equal(attr(xml, 'Response', 'Destination'), `${sp.base}/acs`, xml);
  assert.ok(attr(xml, 'SignatureMethod', 'Algorithm'), `a signed Assertion: ${xml}`);
  assert.ok(sp.received.some((r) => r.method === 'GET' && r.path === '/app/welcome'), 'the 302 was followed');
});

flowTest('from the SP, the ACS\'s 303 to an application on another origin is followed too (Chromium checks form-action on it)', async (page) => {
  const callbacks = [];
  page.on('response', (r) => { if (new URL(r.url()).pathname === '/saml/callback') callbacks.push(r); });
  // The session of the test above: SSO, straight to the auto-posting page.
  await page.goto(`${sp.base}/login?to=${encodeURIComponent(`${app.base}/welcome`)}`);
  await page.waitForURL(`${app.base}/welcome`);
  await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Application ouverte' }).waitFor());
  assert.equal(callbacks.length, 1, 'one auto-posting page');
  const posted = sp.received.filter((r) => r.method === 'POST' && r.path === '/acs').at(-1);
  assert.equal(posted.fields.RelayState, `${app.base}/welcome`);
  assert.equal(attr(xmlOf(posted.fields.SAMLResponse), 'StatusCode', 'Value'), SUCCESS);
});

flowTest('a second SP, whose SingleLogoutService is HTTP-Redirect on another origin, joins the session (SSO, no login page)', async (page) => {
  await page.goto(`${sp.base}/login?as=2&to=${encodeURIComponent(`${app.base}/welcome`)}`);
  await page.waitForURL(`${app.base}/welcome`);
  const posted = sp.received.filter((r) => r.method === 'POST' && r.path === '/acs').at(-1);
  const xml = xmlOf(posted.fields.SAMLResponse);
  assert.ok(xml.includes(`Audience>${sp.entityId2}<`), `an assertion for the second SP: ${xml}`);
});

flowTest('the SP\'s client logs out: each SP is told (HTTP-Redirect, then HTTP-POST, the SPs\' 303s back to /saml/slo followed), then on to the client\'s page', async (page) => {
  const pages = [];
  page.on('response', (r) => { if (r.request().isNavigationRequest()) pages.push(r); });
  const logout = new URL(`${demo.issuer}/logout`);
  logout.searchParams.set('client_id', 'browser-sp');
  logout.searchParams.set('post_logout_redirect_uri', `${app.base}/bye`);
  await page.goto(logout.href);
  await page.getByRole('button', { name: 'Se déconnecter', exact: true }).click();
  await page.waitForURL(`${app.base}/bye`);
  await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Application quittée' }).waitFor());
  const chain = pages.map((r) => `${r.request().method()} ${r.url().split('?')[0]} ${r.status()}`).join(' → ');

  // The second SP by HTTP-Redirect, from the confirmation's POST: its signed answer comes back.
  assert.ok(app.visited.includes('/slo'), `the second SP's SingleLogoutService was reached: ${chain}`);
  // The first by HTTP-POST, from Vigie's page, then back to /saml/slo with its signed answer.
  const sloPage = pages.find((r) => new URL(r.url()).pathname === '/saml/slo' && r.status() === 200);
  assert.ok(sloPage, `Vigie's page that posts to the first SP: ${chain}`);
  assert.ok(formAction(sloPage).includes(sp.base), `it posts to the SP: ${formAction(sloPage)}`);
  const answers = pages.filter((r) => new URL(r.url()).pathname === '/saml/slo' && new URL(r.url()).searchParams.get('Signature'));
  assert.equal(answers.length, 2, `both SPs' signed LogoutResponses came back: ${chain}`);
  const posted = sp.received.filter((r) => r.method === 'POST' && r.path === '/slo');
  assert.equal(posted.length, 1, 'the first SP\'s SingleLogoutService got one POST');
  const xml = xmlOf(posted[0].fields.SAMLRequest);
  assert.match(xml, /<(\w+:)?LogoutRequest\b/, xml);
  assert.equal(attr(xml, 'LogoutRequest', 'Destination'), `${sp.base}/slo`, xml);
  assert.ok(attr(xml, 'SignatureMethod', 'Algorithm'), `signed: ${xml}`);
  assert.ok(posted[0].fields.RelayState, 'with the chain\'s RelayState');
  const audit = await settledAudit(demo);
  assert.ok(audit.some((l) => /^saml: single logout from Vigie: 2 SP\(s\) told, 0 not/.test(l.reason ?? '')),
    `Vigie took both SPs' LogoutResponses: ${JSON.stringify(audit.filter((l) => /saml/.test(l.reason ?? '')))}`);
});
