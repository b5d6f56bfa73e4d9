// Card login in a real browser: Debian's Chromium driven by playwright-core, presenting the demo
// médecin's CPS certificate (demo.json `card`) as the card middleware would once the PIN is typed.
// playwright-core's `clientCertificates` answers the server's CertificateRequest for the origin;
// the gateway then sees a TLS client certificate exactly as from a card.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { startDemo } from '../oidc-client/vigie-demo.mjs';
import { launchChromium } from './chromium.mjs';

let demo;
let browser;
let tmp;

before(async () => {
  demo = await startDemo({ label: 'vigie-card' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vigie-card-'));
  browser = await launchChromium();
}, { timeout: 75_000 });

after(async () => {
  await browser?.close().catch(() => {});
  await demo?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}, { timeout: 15_000 });

/** A browser context whose TLS connections to the gateway present `card` (PEM cert chain + key). */
async function contextWithCard(card) {
  const certPath = path.join(tmp, `card-${Date.now()}.pem`);
  const keyPath = `${certPath}.key`;
  fs.writeFileSync(certPath, card.chain_pem ?? card.cert_pem);
  fs.writeFileSync(keyPath, card.key_pem, { mode: 0o600 });
  // The demo CA is generated at each start; playwright's TLS to the gateway goes through its
  // client-certificate proxy, so server certificate errors are ignored for this context only.
  const ctx = await browser.newContext({
    ignoreHTTPSErrors: true,
    locale: 'fr-FR',
    clientCertificates: [{ origin: new URL(demo.issuer).origin, certPath, keyPath }],
  });
  ctx.setDefaultTimeout(10_000);
  return ctx;
}

test('the médecin inserts the card, clicks the card button, and is in the demo app with acr 2fa-phr and amr sc, pin', { timeout: 40_000 }, async () => {
  const medecin = demo.info.users.find((u) => u.username === 'demo.medecin');
  assert.ok(medecin?.card?.cert_pem && medecin.card.key_pem, 'demo.json gives the médecin a card');
  const ctx = await contextWithCard(medecin.card);
  const page = await ctx.newPage();
  await page.goto(demo.info.demo_app_url);
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.getByRole('link', { name: 'Se connecter avec ma carte CPS / CPE' }).click();
  await page.waitForURL(demo.info.demo_app_url);
  await assert.doesNotReject(page.getByText(`Connecté·e : ${medecin.name}`).waitFor());
  const claims = Object.fromEntries(await page.locator('table tr').evaluateAll((rows) =>
    rows.map((r) => [r.querySelector('th')?.textContent.trim(), r.querySelector('td')?.textContent.trim()])));
  assert.equal(claims.acr, 'urn:vigie:loa:2fa-phr');
  const amr = JSON.parse(claims.amr);
  for (const m of ['sc', 'pin', 'mfa']) assert.ok(amr.includes(m), `amr ${claims.amr} lacks ${m}`);
  await ctx.close();
});

test('a browser without a card gets a page that says so, with the way back to the login page', { timeout: 30_000 }, async () => {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  const page = await ctx.newPage();
  await page.goto(demo.info.demo_app_url);
  await page.getByRole('link', { name: 'Se connecter avec ma carte CPS / CPE' }).click();
  await assert.doesNotReject(page.getByText('Aucune carte n\'a été présentée', { exact: false }).waitFor());
  await page.getByRole('link', { name: 'Revenir à la page de connexion' }).click();
  assert.equal(new URL(page.url()).pathname, '/login');
  await ctx.close();
});
