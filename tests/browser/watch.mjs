// What the browser tests of auto-posting pages (saml.test.mjs, form-post.test.mjs) share: a
// Chromium context that reports every CSP violation and console error, the CSP's `form-action`
// of a response, the form a test server is posted, and a self-signed pair for an https origin.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A context of `browser` (self-signed certificates accepted, French) whose pages, whatever
 *  their origin, push into `problems` each CSP violation (their `securitypolicyviolation`
 *  events, before they navigate away) and each console error. */
export async function watchedContext(browser, problems) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  ctx.setDefaultTimeout(15_000);
  await ctx.exposeBinding('vigieTestCspViolation', (_source, v) => problems.push(`CSP violation on ${v.url}: ${v.directive} blocked ${v.blocked}`));
  await ctx.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.vigieTestCspViolation({ url: document.URL, directive: e.effectiveDirective, blocked: e.blockedURI });
    });
  });
  ctx.on('page', (page) => page.on('console', (m) => {
    // A missing favicon is the browser's own request, not the flow's.
    if (m.text().startsWith('Failed to load resource') && m.location().url.endsWith('/favicon.ico')) return;
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) problems.push(`console ${m.type()} on ${page.url()}: ${m.text()}`);
  }));
  return ctx;
}

/** The CSP `form-action` sources of a response. */
export function formAction(response) {
  const csp = response.headers()['content-security-policy'] ?? '';
  const directive = csp.split(';').map((d) => d.trim().split(/\s+/)).find((d) => d[0] === 'form-action');
  return directive?.slice(1) ?? [];
}

/** The request's body, as form fields. */
export function formOf(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(body))));
    req.on('error', reject);
  });
}

/** A self-signed RSA certificate for `cn` and its key, written under `dir`: their paths. */
export function selfSigned(dir, cn) {
  const key = path.join(dir, `${cn}.key`);
  const cert = path.join(dir, `${cn}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${cn}`, '-keyout', key, '-out', cert], { stdio: 'pipe' });
  return { key, cert, keyPem: fs.readFileSync(key, 'utf8'), certPem: fs.readFileSync(cert, 'utf8') };
}

/** Stops what a test file started, each whatever became of the others: the context, the browser,
 *  Vigie, the test's own servers; then removes its temporary directory. */
export async function closeAll({ ctx, browser, demo, servers = [], tmp }) {
  await ctx?.close().catch(() => {});
  await browser?.close().catch(() => {});
  await demo?.stop();
  for (const server of servers) await server?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}
