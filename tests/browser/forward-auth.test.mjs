// Forward-auth in a real browser: Debian's Chromium (playwright-core) goes to an app that speaks
// nothing, behind a real nginx configured with docs/forward-auth.md's snippets, lands on Vigie's
// login, logs in with password + TOTP and reaches the app, which shows the identity headers Vigie
// gave (never the browser's forged one); a sensitive app behind the same nginx offers the card
// only; the logout on the app's host ends access.
//
//   npm ci && node --test forward-auth.test.mjs   (needs /usr/sbin/nginx: apt-get install nginx-light)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { freePort, startDemo, totp } from '../oidc-client/vigie-demo.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const NGINX = '/usr/sbin/nginx';
// One loopback address per app: separate hosts, separate cookie jars, as in production.
const LAB = '127.0.0.2';
const PHARMA = '127.0.0.3';

let demo;
let app;
let nginx;
let browser;
let tmp;
let nginxPort;

/** Resolves once `host:port` accepts a connection, polling until `timeoutMs`. */
async function listening(host, port, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host, port }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not listen on ${host}:${port} within ${timeoutMs} ms`);
}

/** A fenced block of docs/forward-auth.md, by the comment on its first line (as the Rust tests
 *  read it: the docs' snippets are what runs). */
function docSnippet(marker) {
  const doc = fs.readFileSync(path.join(here, '../../docs/forward-auth.md'), 'utf8');
  const first = `# forward-auth: ${marker}\n`;
  const start = doc.indexOf(first);
  assert.ok(start >= 0, `docs/forward-auth.md has no \`${first.trim()}\` block`);
  const rest = doc.slice(start + first.length);
  return rest.slice(0, rest.indexOf('```'));
}

/** The app: a page listing the request headers it received, as JSON in `#headers`. */
function startApp() {
  const srv = http.createServer((req, res) => {
    const headers = JSON.stringify(req.headers);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="fr"><title>App</title><h1>App</h1><pre id="headers">${headers.replace(/</g, '&lt;')}</pre></html>`);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

async function startNginx(vigie, appAddr) {
  if (!fs.existsSync(NGINX)) throw new Error(`${NGINX} is missing: apt-get install -y nginx-light (tests/run installs it)`);
  const dir = fs.mkdtempSync(path.join(tmp, 'nginx-'));
  const example = (s) => s.replaceAll('10.0.0.5:8080', vigie).replaceAll('http://10.0.0.7:8000', `http://${appAddr}`);
  const block = example(docSnippet('nginx server'));
  const servers = [LAB, PHARMA].map((h) => `server {\n    listen ${h}:${nginxPort};\n    server_name ${h};\n${block}}\n`).join('');
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${dir}/${t};\n`).join('');
  const conf = `worker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\nevents { worker_connections 1024; }\n`
    + `http {\n    access_log off;\n${temps}${example(docSnippet('nginx http'))}${servers}}\n`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = spawn(NGINX, ['-p', dir, '-e', 'error.log', '-c', 'nginx.conf', '-g', 'daemon off; master_process off;'], { stdio: 'ignore' });
  const onExit = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', onExit);
  try {
    await listening(PHARMA, nginxPort, 'nginx');
  } catch (e) {
    const log = fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
    throw new Error(`${e.message}\n${log.slice(-2000)}`);
  }
  return { stop: () => { process.off('exit', onExit); child.kill('SIGTERM'); } };
}

before(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (or set CHROMIUM)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vigie-fwd-browser-'));
  app = await startApp();
  const [plain, port] = [await freePort(), await freePort()];
  nginxPort = port;
  const vigie = `127.0.0.1:${plain}`;
  const lab = `http://${LAB}:${nginxPort}`;
  const pharma = `http://${PHARMA}:${nginxPort}`;
  const client = (id, url, sensitive) =>
    `{client_id="${id}", auth_method="none", redirect_uris=["${url}/.vigie/callback"], sensitive=${sensitive}}`;
  demo = await startDemo({
    label: 'vigie-fwd-browser',
    env: {
      VIGIE_SERVER__PLAIN_HTTP_LISTEN: vigie,
      VIGIE_SERVER__TRUSTED_PROXIES: '["127.0.0.1/32"]',
      VIGIE_CLIENTS: `[${client('lab', lab, false)}, ${client('pharma', pharma, true)}]`,
      VIGIE_FORWARD_AUTH: `{apps=[{url="${lab}", client_id="lab"}, {url="${pharma}", client_id="pharma"}]}`,
    },
  });
  await listening('127.0.0.1', plain, "Vigie's plain listener");
  nginx = await startNginx(vigie, `127.0.0.1:${app.address().port}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run'],
    timeout: 20_000,
  });
}, { timeout: 75_000 });

after(async () => {
  await browser?.close().catch(() => {});
  nginx?.stop();
  app?.close();
  await demo?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}, { timeout: 15_000 });

const labUrl = (p) => `http://${LAB}:${nginxPort}${p}`;
const pharmaUrl = (p) => `http://${PHARMA}:${nginxPort}${p}`;

/** Whether the page is Vigie's login page (its origin, `/login`, a flow). */
function assertVigieLogin(page) {
  const url = new URL(page.url());
  assert.equal(url.origin, new URL(demo.issuer).origin, `expected Vigie's login page, got ${page.url()}`);
  assert.equal(url.pathname, '/login', `expected Vigie's login page, got ${page.url()}`);
  assert.ok(url.searchParams.get('flow'), 'the login page has a flow');
}

/** The headers the app received for the page shown. */
async function appHeaders(page) {
  return JSON.parse(await page.locator('#headers').innerText());
}

test('the médecin reaches an nginx-protected app only after logging in at Vigie; a sensitive app asks for the card; logout ends access', { timeout: 60_000 }, async () => {
  const medecin = demo.info.users.find((u) => u.username === 'demo.medecin');
  assert.ok(medecin, 'demo.json has the médecin');
  // The demo CA is generated at each start: Vigie's certificate is accepted for this context only.
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  ctx.setDefaultTimeout(15_000);
  const page = await ctx.newPage();
  // A header the browser forges: the app must never see it.
  await page.setExtraHTTPHeaders({ 'X-Vigie-User': 'forged' });

  // No session: the app sends the browser to Vigie's login.
  await page.goto(labUrl('/results?id=42'));
  assertVigieLogin(page);
  await page.getByLabel('Identifiant', { exact: true }).fill(medecin.username);
  await page.getByLabel('Mot de passe', { exact: true }).fill(medecin.password);
  await page.getByLabel('Code à usage unique', { exact: true }).fill(await totp(medecin.totp_secret));
  await page.getByRole('button', { name: 'Se connecter', exact: true }).click();
  await page.waitForURL(labUrl('/results?id=42'));
  const seen = await appHeaders(page);
  assert.equal(seen['x-vigie-user'], 'demo.medecin', JSON.stringify(seen));
  assert.equal(seen['x-vigie-level'], 'urn:vigie:loa:2fa', JSON.stringify(seen));
  assert.ok(seen['x-vigie-matricule'], `the app gets the matricule: ${JSON.stringify(seen)}`);
  assert.ok(!JSON.stringify(seen).includes('forged'), `the browser's forged header reached the app: ${JSON.stringify(seen)}`);
  assert.ok(!(seen.cookie ?? '').includes('vigie-session'), "the app never sees Vigie's session cookie");

  // The sensitive pharmacy, same Vigie session: a password + TOTP login is not enough there, and
  // the login page offers the card only.
  await page.goto(pharmaUrl('/dispensations'));
  assertVigieLogin(page);
  await assert.doesNotReject(page.getByRole('link', { name: 'Se connecter avec ma carte CPS / CPE' }).waitFor());
  assert.equal(await page.getByLabel('Mot de passe', { exact: true }).count(), 0, 'the password form is not offered');

  // Logout on the lab's host ends the Vigie session: the lab sends the browser to log in again.
  await page.goto(labUrl('/.vigie/logout'));
  assert.equal(new URL(page.url()).origin, new URL(demo.issuer).origin, `the logout lands on Vigie: ${page.url()}`);
  await page.goto(labUrl('/results?id=42'));
  assertVigieLogin(page);
  await ctx.close();
});
