// OIDC `response_mode=form_post` (OAuth 2.0 Form Post Response Mode) in a real browser (Debian's
// Chromium, playwright-core): a client on another origin (http://127.0.0.1:<port>, allowed on the
// loopback) sends the browser to Vigie's /authorize; the demo nurse logs in with password + TOTP;
// Vigie's page posts the code, state and iss to the client's redirect_uri under its nonce CSP,
// and the client's callback answers, as most do, with a 303 to its application on another origin
// (https://127.0.0.1:<port>). Chromium applies `form-action` to every redirect that follows a
// post (CSP3 §6.4.2): any CSP violation (the page's `securitypolicyviolation` events, its
// console) fails, and so does a person left on Vigie's page.
//
//   npm ci && node --test form-post.test.mjs   (VIGIE_BIN=/path/to/vigie to override)
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { startDemo, totp } from '../oidc-client/vigie-demo.mjs';
import { launchChromium } from './chromium.mjs';
import { closeAll, formAction, formOf, selfSigned, watchedContext } from './watch.mjs';

const CLIENT_ID = 'browser-form-post';

let demo;
let browser;
let ctx;
let tmp;
let client;
let app;
/** CSP violations and console errors of every page of the context. */
const problems = [];

/** The client (a relying party): `/callback` takes the posted authorization response and answers
 *  303 to its application's page on another origin (`appBase`). The forms it is posted are kept
 *  in `posted`. */
async function startClient(appBase) {
  const posted = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://client');
    if (req.method === 'POST' && url.pathname === '/callback') {
      posted.push(await formOf(req));
      res.writeHead(303, { location: `${appBase}/welcome`, 'cache-control': 'no-store' });
      return res.end();
    }
    res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404);
    res.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { base, redirectUri: `${base}/callback`, posted, close: () => new Promise((r) => server.close(r)) };
}

/** The client's application, on another origin (https, its own certificate). */
async function startApp(key, cert) {
  const server = https.createServer({ key, cert }, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html lang="fr"><title>App</title><h1>Application ouverte</h1></html>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `https://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vigie-form-post-browser-'));
  const { keyPem, certPem } = selfSigned(tmp, 'browser-app');
  app = await startApp(keyPem, certPem);
  client = await startClient(app.base);
  demo = await startDemo({
    label: 'vigie-form-post-browser',
    env: { VIGIE_CLIENTS: `[{client_id="${CLIENT_ID}", auth_method="none", redirect_uris=["${client.redirectUri}"]}]` },
  });
  browser = await launchChromium();
  ctx = await watchedContext(browser, problems);
}, { timeout: 75_000 });

after(() => closeAll({ ctx, browser, demo, servers: [client, app], tmp }), { timeout: 15_000 });

test('form_post: the nurse signs in, the code is posted to the client, whose 303 to its app on another origin is followed', { timeout: 60_000 }, async () => {
  problems.length = 0;
  const page = await ctx.newPage();
  const nurse = demo.info.users.find((u) => u.username === 'demo.infirmiere');
  assert.ok(nurse, 'demo.json has demo.infirmiere');
  const authorizePages = [];
  page.on('response', (r) => {
    if (r.request().isNavigationRequest() && r.status() === 200 && r.url().startsWith(demo.issuer)
      && (r.headers()['content-security-policy'] ?? '').includes('nonce-')) authorizePages.push(r);
  });

  const state = randomBytes(16).toString('base64url');
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL(`${demo.issuer}/authorize`);
  for (const [k, v] of Object.entries({
    client_id: CLIENT_ID,
    redirect_uri: client.redirectUri,
    response_type: 'code',
    response_mode: 'form_post',
    scope: 'openid',
    state,
    nonce: randomBytes(16).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  })) authorize.searchParams.set(k, v);
  await page.goto(authorize.href);
  assert.equal(new URL(page.url()).pathname, '/login', `Vigie's login page, got ${page.url()}`);
  await page.getByLabel('Identifiant', { exact: true }).fill(nurse.username);
  await page.getByLabel('Mot de passe', { exact: true }).fill(nurse.password);
  await page.getByLabel('Code à usage unique', { exact: true }).fill(await totp(nurse.totp_secret));
  await page.getByRole('button', { name: 'Se connecter', exact: true }).click();

  // Vigie's page posts to the callback; the callback's 303 lands on the application.
  await page.waitForURL(`${app.base}/welcome`).catch(async (e) => {
    // The violation's event and console line may come after the aborted navigation: give them a moment.
    await page.waitForTimeout(1000);
    assert.fail(`the callback's 303 to the application was not followed (${e.message.split('\n')[0]}): left on `
      + `${page.url()}, the callback got ${client.posted.length} POST(s); ${problems.join('; ')}`);
  });
  await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Application ouverte' }).waitFor());
  assert.equal(client.posted.length, 1, 'the callback got one POST');
  const fields = client.posted[0];
  assert.ok(fields.code, `a code: ${JSON.stringify(fields)}`);
  assert.equal(fields.state, state);
  assert.equal(fields.iss, demo.issuer);
  assert.equal(authorizePages.length, 1, 'one auto-posting page');
  assert.deepEqual(formAction(authorizePages[0]), [client.base, 'https:'], 'posts to the client only, follows https redirects');
  assert.deepEqual(problems, [], 'no CSP violation, no console error');
  await page.close();
});
