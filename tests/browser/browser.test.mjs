// What a person sees in a real browser: Debian's Chromium driven by playwright-core, against
// an embedded demo started for the run (free port, temporary data directory).
//
//   npm ci && npm test          (VIGIE_BIN=/path/to/vigie, CHROMIUM=/path/to/chromium to override)
//
// No browser is downloaded: playwright-core drives /usr/bin/chromium
// (apt-get install -y --no-install-recommends chromium). TLS is not switched off: Chromium
// accepts only certificates chaining to the demo CA's key (--ignore-certificate-errors-spki-list
// pinned to that key), since the demo CA is generated at each start.
// The claims page is captured to .work/claims.png for a human to look at.
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { startDemo, totp } from '../oidc-client/vigie-demo.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const workDir = path.join(here, '.work');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const FR = {
  title: 'Connexion',
  username: 'Identifiant',
  password: 'Mot de passe',
  totp: 'Code à usage unique',
  submit: 'Se connecter',
  error: 'Identifiant, mot de passe ou code incorrect, ou compte temporairement verrouillé. Vérifiez votre saisie ou contactez le support.',
};
const EN = {
  title: 'Sign in',
  username: 'Username',
  password: 'Password',
  totp: 'One-time code',
  submit: 'Sign in',
};

let demo;
let context;
let userDataDir;
const problems = []; // console errors, page errors, CSP violations and failed subresources of the running test
const notes = new Set(); // cosmetic findings, printed but not failing

before(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (or set CHROMIUM)`);
  }
  fs.mkdirSync(workDir, { recursive: true });
  demo = await startDemo({ label: 'vigie-browser' });
  const ca = new X509Certificate(fs.readFileSync(demo.caFile));
  const caSpki = createHash('sha256').update(ca.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigie-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${caSpki}`,
    ],
    locale: 'fr-FR',
    viewport: { width: 1024, height: 768 },
    timeout: 20_000,
  });
  context.setDefaultTimeout(10_000);
  context.on('page', watch);
  for (const p of context.pages()) watch(p);
}, { timeout: 45_000 });

after(async () => {
  for (const n of notes) console.log(`# note: ${n}`);
  await context?.close().catch(() => {});
  await demo?.stop();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
}, { timeout: 15_000 });

function watch(page) {
  page.on('console', (m) => {
    // "Failed to load resource" duplicates what the response listener below sees, and a
    // refused login is answered 401 on purpose.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('response', (r) => {
    if (r.request().resourceType() === 'document' || r.status() < 400) return;
    const what = `${r.request().resourceType()} ${r.url()} answered ${r.status()} (on ${page.url()})`;
    // Browsers ask for /favicon.ico on their own; its absence is only a cosmetic note.
    if (new URL(r.url()).pathname === '/favicon.ico') notes.add(what.replace(/ \(on .*\)$/, ''));
    else problems.push(what);
  });
}

/** A test that also fails on any console error, page error, CSP violation or failed
 *  subresource seen while it ran. */
function pageTest(name, options, fn) {
  test(name, options, async () => {
    problems.length = 0;
    await fn();
    assert.deepEqual(problems, [], 'no console error, page error, CSP violation or failed subresource');
  });
}

const user = (name) => {
  const u = demo.info.users.find((x) => x.username === name);
  assert.ok(u, `demo user ${name} is missing from demo.json`);
  return u;
};

/** Opens the demo app in a new tab; it sends the browser to Vigie's login page. */
async function openDemoApp() {
  const page = await context.newPage();
  await page.goto(demo.info.demo_app_url);
  return page;
}

async function expectLoginPage(page) {
  const url = new URL(page.url());
  assert.equal(url.origin, new URL(demo.issuer).origin, `expected Vigie's login page, got ${page.url()}`);
  assert.equal(url.pathname, '/login', `expected Vigie's login page, got ${page.url()}`);
  assert.ok(url.searchParams.get('flow'), 'the login page has no flow');
}

const htmlLang = (page) => page.locator('html').getAttribute('lang');

pageTest('the login page is in French by default and in English with ?lang=en', { timeout: 30_000 }, async () => {
  const page = await openDemoApp();
  await expectLoginPage(page);
  await page.screenshot({ path: path.join(workDir, 'login.png'), fullPage: true });
  assert.equal(await htmlLang(page), 'fr');
  assert.equal(await page.title(), `${FR.title} · Vigie`);
  await assert.doesNotReject(page.getByRole('heading', { level: 1, name: FR.title }).waitFor());
  for (const l of [FR.username, FR.password, FR.totp]) assert.equal(await page.getByLabel(l, { exact: true }).count(), 1, `label ${l}`);
  assert.equal(await page.getByRole('button', { name: FR.submit, exact: true }).count(), 1);

  // A browser asking for neither French nor English gets French too.
  const de = await context.newPage();
  await de.setExtraHTTPHeaders({ 'accept-language': 'de-DE,de;q=0.9' });
  await de.goto(page.url());
  assert.equal(await htmlLang(de), 'fr', 'a German browser should get the French page (the default)');
  await de.close();

  const en = new URL(page.url());
  en.searchParams.set('lang', 'en');
  await page.goto(en.href);
  assert.equal(await htmlLang(page), 'en');
  assert.equal(await page.title(), `${EN.title} · Vigie`);
  for (const l of [EN.username, EN.password, EN.totp]) assert.equal(await page.getByLabel(l, { exact: true }).count(), 1, `label ${l}`);
  assert.equal(await page.getByRole('button', { name: EN.submit, exact: true }).count(), 1);
  // The language link takes the user back to French, in the same login flow.
  await page.getByRole('link', { name: 'Français' }).click();
  assert.equal(await htmlLang(page), 'fr');
  assert.equal(new URL(page.url()).searchParams.get('flow'), en.searchParams.get('flow'));
  await page.close();
});

pageTest('every input of the login page has a label, and the page is usable with a screen reader', { timeout: 30_000 }, async () => {
  const page = await openDemoApp();
  await expectLoginPage(page);
  const inputs = await page.locator('form input:not([type=hidden]), form select, form textarea').evaluateAll((els) =>
    els.map((e) => ({
      name: e.name,
      id: e.id,
      labels: [...(e.labels || [])].map((l) => l.textContent.trim()),
      ariaLabel: e.getAttribute('aria-label'),
      ariaLabelledby: e.getAttribute('aria-labelledby'),
      autocomplete: e.getAttribute('autocomplete'),
    })));
  // The password + TOTP form, and the sponsorship form (username + temporary code).
  assert.deepEqual(inputs.map((i) => i.name).sort(), ['code', 'password', 'totp', 'username', 'username']);
  for (const i of inputs) {
    assert.ok(i.labels.some((t) => t.length > 0) || i.ariaLabel || i.ariaLabelledby, `input ${i.name} has no label`);
    assert.ok(i.autocomplete, `input ${i.name} has no autocomplete hint (WCAG 1.3.5)`);
  }
  // The accessible tree, as assistive technology sees it.
  const tree = await page.locator('main').ariaSnapshot();
  for (const expected of [`heading "${FR.title}"`, `textbox "${FR.username}"`, `textbox "${FR.totp}"`, `button "${FR.submit}"`,
    'textbox "Identifiant (parrainage)"', 'textbox "Code temporaire"']) {
    assert.ok(tree.includes(expected), `the accessibility tree lacks ${expected}:\n${tree}`);
  }
  // The one-time code field points to its help text.
  const help = await page.getByLabel(FR.totp).getAttribute('aria-describedby');
  assert.ok(help && (await page.locator(`#${help}`).innerText()).length > 0, 'the one-time code has no description');
  await page.close();
});

pageTest('a wrong password shows the generic error, which does not say whether the account exists', { timeout: 30_000 }, async () => {
  const page = await openDemoApp();
  await expectLoginPage(page);
  const medecin = user('demo.medecin');
  const attempt = async (username, password) => {
    await page.getByLabel(FR.username, { exact: true }).fill(username);
    await page.getByLabel(FR.password, { exact: true }).fill(password);
    await page.getByLabel(FR.totp, { exact: true }).fill('000000');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/login/password')),
      page.getByRole('button', { name: FR.submit, exact: true }).click(),
    ]);
    await page.waitForLoadState();
    const alert = page.getByRole('alert');
    return { status: response.status(), text: (await alert.innerText()).trim(), count: await alert.count() };
  };
  const wrongPassword = await attempt(medecin.username, `${medecin.password}-typo`);
  await page.screenshot({ path: path.join(workDir, 'login-error.png'), fullPage: true });
  assert.equal(wrongPassword.count, 1, 'one error message');
  assert.equal(wrongPassword.text, FR.error);
  assert.equal(wrongPassword.status, 401);
  // The error is tied to the fields for screen readers, and the username is kept.
  assert.equal(await page.getByLabel(FR.username, { exact: true }).getAttribute('aria-describedby'), 'login-error');
  assert.equal(await page.getByLabel(FR.username, { exact: true }).inputValue(), medecin.username);
  assert.equal(await page.getByLabel(FR.password, { exact: true }).inputValue(), '', 'the password must not be sent back');

  const unknown = await attempt('personne.inconnue', 'Nimporte-Quoi-123');
  assert.deepEqual(unknown, wrongPassword, 'an unknown account must look exactly like a wrong password');
  for (const leak of [/inconnu/i, /n'existe pas/i, /introuvable/i, /unknown/i, /not found/i]) {
    assert.doesNotMatch(unknown.text, leak);
  }
  await page.close();
});

pageTest('newcomer opens the demo app, logs in with password and TOTP, sees acr, amr, auth_time, sub and names; logs out; opening the demo app again asks for login', { timeout: 30_000 }, async () => {
  await context.clearCookies();
  const infirmiere = user('demo.infirmiere');
  const before = Math.floor(Date.now() / 1000);

  // Opens the demo app: Vigie's login page, in French.
  const page = await openDemoApp();
  await expectLoginPage(page);
  assert.equal(await htmlLang(page), 'fr');
  await page.getByLabel(FR.username, { exact: true }).fill(infirmiere.username);
  await page.getByLabel(FR.password, { exact: true }).fill(infirmiere.password);
  await page.getByLabel(FR.totp, { exact: true }).fill(await totp(infirmiere.totp_secret));
  await page.getByRole('button', { name: FR.submit, exact: true }).click();

  // Back in the demo app, which shows the ID token's claims.
  await page.waitForURL(demo.info.demo_app_url);
  await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Application de démonstration' }).waitFor());
  await assert.doesNotReject(page.getByText(`Connecté·e : ${infirmiere.name}`).waitFor());
  const claims = Object.fromEntries(await page.locator('table tr').evaluateAll((rows) =>
    rows.map((r) => [r.querySelector('th')?.textContent.trim(), r.querySelector('td')?.textContent.trim()])));
  fs.mkdirSync(workDir, { recursive: true });
  await page.screenshot({ path: path.join(workDir, 'claims.png'), fullPage: true });

  assert.equal(claims.acr, 'urn:vigie:loa:2fa');
  const amr = JSON.parse(claims.amr);
  for (const m of ['pwd', 'otp', 'mfa']) assert.ok(amr.includes(m), `amr ${claims.amr} lacks ${m}`);
  // The page shows epoch seconds, then the time in RFC 3339: "1795330779 (2026-11-22T06:59:39Z)".
  const authTime = Number(claims.auth_time.split(' ')[0]);
  assert.match(claims.auth_time, /^\d+ \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$/);
  assert.ok(authTime >= before - 2 && authTime <= Math.floor(Date.now() / 1000) + 2, `auth_time ${claims.auth_time} is not the time of this login`);
  assert.ok(claims.sub, 'no sub');
  assert.equal(claims.name, infirmiere.name);
  const [given, ...family] = infirmiere.name.split(' ');
  assert.equal(claims.given_name, given);
  assert.equal(claims.family_name, family.join(' '));
  assert.equal(claims.iss, demo.issuer);
  assert.equal(claims.aud, 'demo-app');
  assert.ok(claims.sid, 'no sid');

  // Logs out: back to the demo app's "logged out" page, through Vigie's end-session endpoint.
  const visited = [];
  page.on('request', (r) => { if (r.isNavigationRequest()) visited.push(r.url()); });
  await page.getByRole('button', { name: 'Se déconnecter' }).click();
  await page.waitForURL((u) => u.pathname === '/demo-app/logged-out');
  assert.ok(visited.some((u) => new URL(u).pathname === '/logout'), `the logout did not go through Vigie: ${visited.join(' → ')}`);
  await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Déconnecté' }).waitFor());
  const cookies = (await context.cookies(demo.issuer)).map((c) => c.name);
  assert.ok(!cookies.includes('__Host-vigie-session'), `Vigie's session cookie is still there: ${cookies}`);

  // Opens the demo app again: the login page, not the claims.
  await page.goto(demo.info.demo_app_url);
  await expectLoginPage(page);
  await page.close();
});
