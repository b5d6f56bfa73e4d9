// The admin console as HR and an auditor use it, in Debian's Chromium driven by playwright-core,
// with the keyboard only (Tab, Shift+Tab, Enter, Space; no mouse click once the browser is on a
// page): sign in with HR's CPE card (back on the page that asked), move through the console's
// navigation, find a person, open their page, end one of their sessions through the confirm step,
// search the audit trail; and HR confirming an RPPS derivation proposal on the feeds page, then
// finding the derived idNat on the person's page. Each console page's accessibility tree (playwright's ARIA snapshot) is
// checked: one main landmark and one level-1 heading, every form control named, every table with
// headers, the language switch, and a visible focus indicator on what the keyboard reaches.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { startDemo, totp, vigieBin } from '../oidc-client/vigie-demo.mjs';
import { launchChromium } from './chromium.mjs';

/** ARIA roles of form controls: each needs an accessible name. */
const CONTROLS = new Set(['textbox', 'searchbox', 'combobox', 'listbox', 'button', 'checkbox', 'radio', 'spinbutton', 'slider', 'switch']);

let demo;
let browser;
let tmp;

before(async () => {
  browser = await launchChromium();
  demo = await startDemo({ label: 'vigie-console' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vigie-console-'));
  // HR's demo account has the role `cards`; the IT team gives it `audit` too, as an operator would.
  execFileSync(vigieBin(), ['users', 'grant-role', 'demo.rh', 'audit', '--data-dir', demo.dataDir], { stdio: 'pipe' });
}, { timeout: 75_000 });

after(async () => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  await demo?.stop();
  await browser?.close().catch(() => {});
}, { timeout: 15_000 });

const user = (name) => {
  const u = demo.info.users.find((x) => x.username === name);
  assert.ok(u, `demo user ${name} is missing from demo.json`);
  return u;
};

/** A context presenting HR's CPE (as the card middleware does once the PIN is typed). */
async function hrContext() {
  const card = user('demo.rh').card;
  assert.ok(card?.key_pem, 'demo.json gives HR a CPE');
  const certPath = path.join(tmp, 'rh.pem');
  fs.writeFileSync(certPath, card.chain_pem ?? card.cert_pem);
  fs.writeFileSync(`${certPath}.key`, card.key_pem, { mode: 0o600 });
  const ctx = await browser.newContext({
    ignoreHTTPSErrors: true,
    locale: 'fr-FR',
    viewport: { width: 1280, height: 900 },
    clientCertificates: [{ origin: new URL(demo.issuer).origin, certPath, keyPath: `${certPath}.key` }],
  });
  ctx.setDefaultTimeout(15_000);
  return ctx;
}

/** Presses Tab (Shift+Tab when `back`) until `target` has the focus; fails after `max` presses. */
async function tabTo(page, target, { back = false, max = 60 } = {}) {
  await target.waitFor();
  for (let i = 0; i < max; i++) {
    if (await target.evaluate((el) => el === document.activeElement)) return;
    await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
  }
  const focused = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 200));
  assert.fail(`${await target.evaluate((el) => el.outerHTML.slice(0, 200))} not reached by ${back ? 'Shift+Tab' : 'Tab'} within ${max} presses (focus on ${focused})`);
}

/** Every node of an ARIA snapshot (ariaSnapshotJSON), depth first. */
function* nodes(list) {
  for (const n of list ?? []) {
    if (n && typeof n === 'object') {
      yield n;
      yield* nodes(n.children);
    }
  }
}

/** The accessibility checks every console page passes; `what` names the page in failures. */
async function accessible(page, what) {
  const tree = await page.locator('body').ariaSnapshotJSON();
  const all = [...nodes(Array.isArray(tree) ? tree : [tree])];
  assert.equal(all.filter((n) => n.role === 'main').length, 1, `${what}: one main landmark`);
  const h1 = all.filter((n) => n.role === 'heading' && n.level === 1);
  assert.equal(h1.length, 1, `${what}: one heading of level 1 (${JSON.stringify(h1)})`);
  const unnamed = all.filter((n) => CONTROLS.has(n.role) && !String(n.name ?? '').trim());
  assert.deepEqual(unnamed, [], `${what}: every form control has an accessible name`);
  for (const table of all.filter((n) => n.role === 'table')) {
    const headers = [...nodes(table.children)].filter((n) => n.role === 'columnheader' || n.role === 'rowheader');
    assert.ok(headers.length > 0, `${what}: table "${table.name}" has header cells`);
  }
  // The DOM agrees for what the snapshot cannot say: a label for every visible field.
  const fields = await page.locator('input:not([type=hidden]), select, textarea').evaluateAll((els) =>
    els.filter((e) => !(e.labels?.length || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby'))).map((e) => e.outerHTML));
  assert.deepEqual(fields, [], `${what}: every field has a label`);
  return all;
}

/** Whether the focused element looks different from the same element unfocused. */
async function focusVisible(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    const look = () => {
      const s = getComputedStyle(el);
      return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow, s.borderColor, s.backgroundColor].join('|');
    };
    const focused = look();
    el.blur();
    const blurred = look();
    el.focus();
    return { tag: el.tagName, differs: focused !== blurred, focused, blurred };
  });
}

async function assertFocusVisible(page, what) {
  const f = await focusVisible(page);
  assert.ok(f.differs, `${what}: the focused ${f.tag} looks the same as unfocused (${f.focused})`);
}

/** Léa (demo.interne) signs in to the demo app with password + TOTP: a live session to end. */
async function leaSignsIn() {
  const lea = user('demo.interne');
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  const page = await ctx.newPage();
  await page.goto(demo.info.demo_app_url);
  await page.getByLabel('Identifiant', { exact: true }).fill(lea.username);
  await page.getByLabel('Mot de passe', { exact: true }).fill(lea.password);
  await page.getByLabel('Code à usage unique', { exact: true }).fill(await totp(lea.totp_secret));
  await page.getByRole('button', { name: 'Se connecter', exact: true }).click();
  await page.waitForURL(demo.info.demo_app_url);
  return ctx;
}

test('HR and an auditor use the console with the keyboard only, and its pages are accessible', { timeout: 120_000 }, async () => {
  const lea = await leaSignsIn();
  const ctx = await hrContext();
  const page = await ctx.newPage();
  const origin = new URL(demo.issuer).origin;

  // Not signed in: the page says so; the sign-in link, then the card button, by keyboard.
  await page.goto(`${origin}/admin/people`);
  await accessible(page, 'sign-in needed');
  await tabTo(page, page.getByRole('link', { name: 'Se connecter', exact: true }));
  await assertFocusVisible(page, 'the sign-in link');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/login');
  await tabTo(page, page.getByRole('link', { name: 'Se connecter avec ma carte CPS / CPE' }));
  await page.keyboard.press('Enter');
  // Back on the page that asked for the sign-in, not on another page of the console.
  await page.waitForURL((u) => u.pathname === '/admin/people');
  await accessible(page, 'people search');

  // The console's navigation: the same links on every page, the current one marked; by keyboard.
  const console_ = page.getByRole('navigation', { name: 'Console' });
  const navLinks = async () => console_.getByRole('link').evaluateAll((els) => els.map((e) => [e.textContent, e.getAttribute('aria-current')]));
  const expected = (current) => ['Cartes CPS / CPE', 'Personnes', 'Flux et propositions', "Journal d'audit"].map((n) => [n, n === current ? 'page' : null]);
  assert.deepEqual(await navLinks(), expected('Personnes'), 'the people page marks itself');
  await tabTo(page, console_.getByRole('link', { name: 'Cartes CPS / CPE' }), { back: true });
  await assertFocusVisible(page, 'the navigation link');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/admin/cards');
  await accessible(page, 'cards page');
  assert.deepEqual(await navLinks(), expected('Cartes CPS / CPE'), 'the cards page marks itself');
  // The feeds page: reached by keyboard, marks itself, passes the same checks.
  await tabTo(page, console_.getByRole('link', { name: 'Flux et propositions' }));
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/admin/feeds');
  await accessible(page, 'feeds page');
  assert.deepEqual(await navLinks(), expected('Flux et propositions'), 'the feeds page marks itself');
  await tabTo(page, console_.getByRole('link', { name: 'Personnes' }));
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/admin/people');

  // People: search by typing, open the person, end one session (Space on the button, then the
  // confirm step).
  await accessible(page, 'people search');
  const q = page.getByRole('searchbox', { name: 'Rechercher une personne' });
  await tabTo(page, q);
  await assertFocusVisible(page, 'the search field');
  await page.keyboard.type('bern');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.searchParams.get('q') === 'bern');
  const all = await accessible(page, 'people results');
  assert.ok(all.some((n) => n.role === 'table'), 'the results are a table');
  await tabTo(page, page.getByRole('link', { name: 'Bernard Léa' }));
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.searchParams.has('person'));
  await accessible(page, 'person page');
  const end = page.getByRole('button', { name: /^Mettre fin à la session 1/ });
  await tabTo(page, end);
  await assertFocusVisible(page, 'the end-session button');
  // Shift+Tab leaves it and Tab comes back: the order works both ways.
  await page.keyboard.press('Shift+Tab');
  assert.equal(await end.evaluate((el) => el === document.activeElement), false);
  await tabTo(page, end);
  await page.keyboard.press('Space');
  // The confirm step says whose session ends and what it does; nothing has ended yet.
  await page.getByRole('heading', { level: 2, name: /^Mettre fin à une session de Léa Bernard\s\?$/ }).waitFor();
  await accessible(page, 'confirm page');
  await page.getByText('déconnexion par canal arrière').waitFor();
  assert.equal(new URL(page.url()).searchParams.get('done'), null, 'not ended before the confirmation');
  const confirm = page.getByRole('button', { name: 'Oui, mettre fin à cette session' });
  await tabTo(page, confirm);
  await assertFocusVisible(page, 'the confirm button');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.searchParams.get('done') === 'ended');
  await page.getByText('La session est terminée').waitFor();
  assert.equal(await page.getByText('Aucune session ouverte.').count(), 1);
  await accessible(page, 'person page after the session ended');

  // The audit trail, reached through the navigation: the session just ended, found by kind with
  // the keyboard.
  await tabTo(page, console_.getByRole('link', { name: "Journal d'audit" }), { back: true });
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/admin/audit-trail');
  await accessible(page, 'audit page');
  assert.deepEqual(await navLinks(), expected("Journal d'audit"), 'the audit page marks itself');
  const kind = page.getByRole('combobox', { name: "Type d'événement" }).or(page.getByRole('textbox', { name: "Type d'événement" }));
  await tabTo(page, kind);
  await assertFocusVisible(page, 'the event kind field');
  await page.keyboard.type('access_ended');
  const result = page.getByRole('combobox', { name: 'Résultat' });
  await tabTo(page, result);
  await assertFocusVisible(page, 'the result list');
  await page.keyboard.press('ArrowDown'); // "succès"
  const search = page.getByRole('button', { name: 'Rechercher', exact: true });
  await tabTo(page, search);
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.searchParams.get('kind') === 'access_ended');
  assert.equal(new URL(page.url()).searchParams.get('result'), 'success');
  const tree = await accessible(page, 'audit results');
  const table = tree.find((n) => n.role === 'table');
  assert.ok(table, 'the audit results are a table');
  const headers = [...nodes(table.children)].filter((n) => n.role === 'columnheader').map((n) => n.name);
  assert.deepEqual(headers, ['Date (UTC)', 'Événement', 'Qui', 'Application', 'IP', 'Moyen · niveau', 'Résultat', 'Identifiant de requête']);
  const rows = await page.locator('#records tbody tr').allInnerTexts();
  assert.ok(rows.length >= 1 && rows.every((r) => r.includes('access_ended')), `rows: ${rows.join('\n')}`);
  const exportLink = page.getByRole('link', { name: 'CSV (tableur)' });
  await tabTo(page, exportLink);
  await assertFocusVisible(page, 'the CSV export link');

  // The language switch, by keyboard: the same search in English.
  await tabTo(page, page.getByRole('link', { name: 'English' }), { back: true });
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.searchParams.get('lang') === 'en');
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  assert.equal(new URL(page.url()).searchParams.get('kind'), 'access_ended', 'the switch keeps the search');
  await page.getByRole('heading', { level: 1, name: 'Audit trail' }).waitFor();
  await accessible(page, 'audit results in English');
  assert.equal(await page.getByRole('textbox', { name: 'Event kind' }).or(page.getByRole('combobox', { name: 'Event kind' })).inputValue(), 'access_ended');

  await ctx.close();
  await lea.close();
});

test('HR confirms an RPPS derivation proposal with the keyboard and sees the idNat on the person\'s page', { timeout: 120_000 }, async () => {
  // A proposal to confirm, as HR's colleague in IT makes it: the extraction loaded, then proposed.
  const extraction = path.resolve(import.meta.dirname, '../../conformance/annuaire-sandbox/extraction.txt');
  for (const args of [['rpps', 'load', extraction], ['rpps', 'propose']]) {
    execFileSync(vigieBin(), [...args, '--data-dir', demo.dataDir], { stdio: 'pipe' });
  }
  const ctx = await hrContext();
  const page = await ctx.newPage();
  const origin = new URL(demo.issuer).origin;

  // Signed in with HR's card from the feeds page, and back on it.
  await page.goto(`${origin}/admin/feeds`);
  await tabTo(page, page.getByRole('link', { name: 'Se connecter', exact: true }));
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/login');
  await tabTo(page, page.getByRole('link', { name: 'Se connecter avec ma carte CPS / CPE' }));
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/admin/feeds');

  // The proposal is there with its evidence, and the accessibility tree names its confirm button
  // after the person and the idNat (a screen reader says what is being confirmed).
  const tree = await accessible(page, 'feeds page with a proposal');
  const name = 'Confirmer : Martin Camille, idNat 810100000045';
  assert.ok(tree.some((n) => n.role === 'button' && n.name === name), `a button named "${name}" in the accessibility tree`);
  const row = page.locator('#rpps-proposals tr', { hasText: 'M000101' });
  assert.match(await row.innerText(), /forte/, 'a strong match');
  const confirm = page.getByRole('button', { name, exact: true });
  await tabTo(page, confirm);
  await assertFocusVisible(page, 'the confirm button');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.searchParams.get('done') === 'confirmed');
  await page.getByText('Dérivation confirmée : l\'identité porte désormais cet idNat.').waitFor();
  assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, 'the proposal is decided');
  await accessible(page, 'feeds page after the confirmation');

  // The person's page, reached by keyboard through the navigation and the search, shows the idNat.
  await tabTo(page, page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Personnes' }), { back: true });
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/admin/people');
  await tabTo(page, page.getByRole('searchbox', { name: 'Rechercher une personne' }));
  await page.keyboard.type('martin cam');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.searchParams.get('q') === 'martin cam');
  await tabTo(page, page.getByRole('link', { name: 'Martin Camille' }));
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.searchParams.has('person'));
  await accessible(page, 'person page after the derivation');
  const identity = await page.locator('main').innerText();
  assert.match(identity, /810100000045/, 'the derived idNat is on the person\'s page');
  await ctx.close();
});
