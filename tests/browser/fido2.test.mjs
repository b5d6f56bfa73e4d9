// FIDO2 in a real browser: Debian's Chromium driven by playwright-core, with the DevTools
// virtual authenticator (CTAP2, resident keys, user verification) standing for a security key.
// A demo user signs in with password + TOTP, registers a key on /account/keys, signs out, signs
// in with the key alone (acr phishing-resistant; amr swk, not hwk: the demo verifies no
// attestation, and Chromium's virtual key is the software authenticator it must not trust); then a copy of the key with a
// lower signature counter is refused with a clear page and an audit line. And an agent with no
// account yet enrols a key with the one-time code HR issued through the admin API.
//
//   npm ci && npm test          (VIGIE_BIN=/path/to/vigie, CHROMIUM=/path/to/chromium to override)
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { settledAudit, startDemo, totp } from '../oidc-client/vigie-demo.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const workDir = path.join(here, '.work');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// The demo verifies no attestation (`webauthn.attestation = "none"`): the model a key claims,
// Chromium's 01020304-0506-0708-0102-030405060708 here, is not recorded.
const UNVERIFIED_AAGUID = '00000000-0000-0000-0000-000000000000';

let demo;
let context;
let userDataDir;
const problems = []; // page errors and CSP violations of the running test

before(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (or set CHROMIUM)`);
  }
  fs.mkdirSync(workDir, { recursive: true });
  demo = await startDemo({ label: 'vigie-fido2' });
  const ca = new X509Certificate(fs.readFileSync(demo.caFile));
  const caSpki = createHash('sha256').update(ca.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigie-chromium-fido2-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${caSpki}`],
    locale: 'fr-FR',
    timeout: 20_000,
  });
  context.setDefaultTimeout(10_000);
}, { timeout: 45_000 });

after(async () => {
  await context?.close().catch(() => {});
  await demo?.stop();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
}, { timeout: 15_000 });

function watch(page) {
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`${page.url()}: ${m.text()}`);
  });
}

/** A page with its own virtual security key. */
async function pageWithKey() {
  const page = await context.newPage();
  watch(page);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      ctap2Version: 'ctap2_1',
      transport: 'usb',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { page, cdp, authenticatorId };
}

/** A test that also fails on any page error or CSP violation seen while it ran. */
function pageTest(name, options, fn) {
  test(name, options, async () => {
    problems.length = 0;
    await fn();
    assert.deepEqual(problems, [], 'no page error and no Content-Security-Policy violation');
  });
}

async function claimsOf(page) {
  await page.waitForURL(demo.info.demo_app_url);
  return Object.fromEntries(await page.locator('table tr').evaluateAll((rows) =>
    rows.map((r) => [r.querySelector('th')?.textContent.trim(), r.querySelector('td')?.textContent.trim()])));
}

async function logOut(page) {
  await page.goto(demo.info.demo_app_url);
  await page.getByRole('button', { name: 'Se déconnecter' }).click();
  await page.waitForURL((u) => u.pathname === '/demo-app/logged-out');
}

pageTest('a key registered after a password login signs in alone; a cloned key is refused', { timeout: 60_000 }, async () => {
  await context.clearCookies();
  const before = (await settledAudit(demo)).length;
  const medecin = demo.info.users.find((u) => u.username === 'demo.medecin');
  const { page, cdp, authenticatorId } = await pageWithKey();

  // Password + TOTP first.
  await page.goto(demo.info.demo_app_url);
  await page.getByLabel('Identifiant', { exact: true }).fill(medecin.username);
  await page.getByLabel('Mot de passe', { exact: true }).fill(medecin.password);
  await page.getByLabel('Code à usage unique', { exact: true }).fill(await totp(medecin.totp_secret));
  await page.getByRole('button', { name: 'Se connecter', exact: true }).click();
  const first = await claimsOf(page);
  assert.equal(first.acr, 'urn:vigie:loa:2fa');

  // Registers a key on "my security keys".
  await page.goto(`${demo.issuer}/account/keys`);
  await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Mes clés de sécurité' }).waitFor());
  await page.getByLabel('Nom de la clé').fill('Clé du bloc');
  await page.getByRole('button', { name: 'Enregistrer une nouvelle clé' }).click();
  await page.waitForURL((u) => u.pathname === '/account/keys' && u.searchParams.get('done') === 'added');
  const row = page.locator('#keys tbody tr');
  assert.equal(await row.count(), 1);
  const cells = await row.locator('td').allInnerTexts();
  assert.equal(cells[0], 'Clé du bloc');
  assert.equal(cells[1], UNVERIFIED_AAGUID, 'an unattested key model is not recorded');
  assert.equal(cells[3], 'jamais');
  await page.screenshot({ path: path.join(workDir, 'fido2-keys.png'), fullPage: true });
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.ok(credentials[0].isResidentCredential, 'a discoverable credential');

  // Signs out, then in with the key alone: no username typed.
  await logOut(page);
  await page.goto(demo.info.demo_app_url);
  await page.getByRole('button', { name: 'Se connecter avec ma clé de sécurité FIDO2' }).click();
  const claims = await claimsOf(page);
  assert.equal(claims.acr, 'urn:vigie:loa:2fa-phr');
  assert.deepEqual(JSON.parse(claims.amr), ['pin', 'swk', 'mfa'], 'an unattested key is no hardware key');
  assert.equal(claims.sub, first.sub, 'the key signs in its owner');
  await page.screenshot({ path: path.join(workDir, 'fido2-claims.png'), fullPage: true });

  // The key as it is now (counter 2 after registration and one login), copied to another
  // authenticator with a lower counter: what a cloned key looks like.
  const [cred] = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
  assert.ok(cred.signCount >= 1, `the virtual key counts signatures (${cred.signCount})`);
  await logOut(page);
  await page.close();
  const copy = await pageWithKey();
  await copy.cdp.send('WebAuthn.addCredential', {
    authenticatorId: copy.authenticatorId,
    credential: { ...cred, signCount: 0 },
  });
  await copy.page.goto(demo.info.demo_app_url);
  const [answer] = await Promise.all([
    copy.page.waitForResponse((r) => new URL(r.url()).pathname === '/login/fido2' && r.request().method() === 'POST'),
    copy.page.getByRole('button', { name: 'Se connecter avec ma clé de sécurité FIDO2' }).click(),
  ]);
  assert.equal(answer.status(), 403);
  await copy.page.waitForLoadState();
  const alert = (await copy.page.getByRole('alert').innerText()).trim();
  assert.match(alert, /semble avoir été copiée/);
  await copy.page.screenshot({ path: path.join(workDir, 'fido2-clone.png'), fullPage: true });
  const cookies = (await context.cookies(demo.issuer)).map((c) => c.name);
  assert.ok(!cookies.includes('__Host-vigie-session'), 'no session for the clone');
  const logins = (await settledAudit(demo)).slice(before).filter((l) => l.kind === 'login' && l.method === 'fido2');
  assert.deepEqual(logins.map((l) => l.outcome), ['success', 'failure'], 'the key\'s login, then the clone refused, and nothing else');
  assert.match(logins[1].reason, /possible cloned security key/);
  await copy.page.close();
});

/** HR's admin API with the demo's token (bearer), trusting only the demo CA. */
function api(method, pathname) {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(`${demo.info.admin_api.url}${pathname}`), {
      method,
      ca: fs.readFileSync(demo.caFile),
      headers: { authorization: `Bearer ${demo.info.admin_api.token}` },
    }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: body ? JSON.parse(body) : null }));
    });
    req.on('error', reject);
    req.end();
  });
}

pageTest('an agent enrols a key with the code HR issued, without signing in, then signs in with it', { timeout: 60_000 }, async () => {
  await context.clearCookies();
  const infirmiere = demo.info.users.find((u) => u.username === 'demo.infirmiere');
  const family = infirmiere.name.split(' ').slice(1).join(' ');
  const found = await api('GET', `/identities?q=${encodeURIComponent(family)}`);
  assert.equal(found.status, 200);
  const agent = found.body.identities.find((i) => `${i.given_name} ${i.family_name}` === infirmiere.name);
  assert.ok(agent, `HR finds ${infirmiere.name}`);
  const issued = await api('POST', `/identities/${agent.id}/fido2/enrolment-code`);
  assert.equal(issued.status, 201);
  assert.match(issued.body.code, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);

  // The code form is plain HTML; only the key registration itself needs JavaScript.
  const { page } = await pageWithKey();
  await page.goto(issued.body.enrol_url);
  await page.getByLabel("Code d'enrôlement").fill(issued.body.code.toLowerCase());
  await page.getByRole('button', { name: 'Continuer' }).click();
  await page.waitForURL((u) => u.pathname === '/account/keys');
  await assert.doesNotReject(page.getByText(infirmiere.name).waitFor());
  await page.getByLabel('Nom de la clé').fill('Clé de garde');
  await page.getByRole('button', { name: 'Enregistrer une nouvelle clé' }).click();
  await page.waitForURL((u) => u.searchParams.get('done') === 'added');
  await page.getByRole('button', { name: "Terminer l'enrôlement" }).click();
  await assert.doesNotReject(page.getByText("L'enrôlement est terminé").waitFor());

  const keys = await api('GET', `/identities/${agent.id}/fido2`);
  assert.deepEqual(keys.body.keys.map((k) => [k.name, k.aaguid, k.attested]), [['Clé de garde', UNVERIFIED_AAGUID, false]]);

  await page.goto(demo.info.demo_app_url);
  await page.getByRole('button', { name: 'Se connecter avec ma clé de sécurité FIDO2' }).click();
  const claims = await claimsOf(page);
  assert.equal(claims.acr, 'urn:vigie:loa:2fa-phr');
  assert.equal(claims.name, infirmiere.name);
  await page.close();
});
