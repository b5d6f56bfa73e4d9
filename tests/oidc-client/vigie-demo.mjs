// Starts and stops Vigie's embedded demo for the end-to-end tests in tests/oidc-client and
// tests/browser. Node built-ins only, so that either package can import it without the
// other's node_modules.
//
//   const demo = await startDemo({ bin, label })   // fresh data dir, free port, /healthz answers
//   demo.issuer, demo.info (demo.json), demo.caFile, demo.dataDir, demo.logs()
//   await demo.stop()                               // always call it (try/finally)
//   await settledAudit(demo)                        // the audit trail of all done so far
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The gateway binary: $VIGIE_BIN, else the workspace's debug build. */
export function vigieBin() {
  return path.resolve(process.env.VIGIE_BIN || path.join(here, '../../target/debug/vigie'));
}

/**
 * The gateway reads every `VIGIE_…` variable as a configuration override and refuses to start
 * on one it does not know, such as the harness's own VIGIE_BIN: the demo runs with its
 * built-in configuration, so only VIGIE_LOG is passed on.
 */
function gatewayEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VIGIE_') || k === 'VIGIE_LOG'));
  return { ...env, RUST_BACKTRACE: '0' };
}

/** A free TCP port on the loopback (closed again: the caller binds it next). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function healthz(port, ca) {
  return new Promise((resolve) => {
    const req = https.get(
      { host: '127.0.0.1', servername: 'localhost', port, path: '/healthz', ca, headers: { host: `localhost:${port}` }, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

/**
 * Starts `vigie serve` (embedded demo) on a free port with a fresh data directory and waits
 * until /healthz answers over TLS verified against the demo CA. `env`: settings over the demo's
 * (`VIGIE_…` variables), e.g. the forward-auth apps; or a function of the port that gives them,
 * for settings that name the issuer (`https://localhost:<port>`), such as a redirect URI.
 */
export async function startDemo({ bin = vigieBin(), label = 'vigie-test', timeoutMs = 30_000, env = {} } = {}) {
  if (!fs.existsSync(bin)) {
    throw new Error(`gateway binary not found at ${bin}: build it (cargo build -p vigie-gateway) or set VIGIE_BIN`);
  }
  let lastError;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`));
    const logFile = path.join(dataDir, 'gateway.log');
    const log = fs.openSync(logFile, 'a');
    const child = spawn(bin, ['serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
      stdio: ['ignore', log, log],
      env: { ...gatewayEnv(), ...(typeof env === 'function' ? env(port) : env) },
    });
    fs.closeSync(log);
    let exited = null;
    const exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    }));
    // Never leave a gateway behind, even when the test process dies on an exception.
    const onExit = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
    process.on('exit', onExit);
    const logs = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
    const stop = async () => {
      process.off('exit', onExit);
      if (exited === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => { if (exited === null) child.kill('SIGKILL'); }, 5000);
        await exitPromise;
        clearTimeout(t);
      }
      if (!process.env.VIGIE_KEEP_DATA) fs.rmSync(dataDir, { recursive: true, force: true });
    };

    const deadline = Date.now() + timeoutMs;
    let ready = false;
    while (Date.now() < deadline && exited === null) {
      const caFile = path.join(dataDir, 'ca.pem');
      if (fs.existsSync(caFile) && fs.existsSync(path.join(dataDir, 'demo.json'))) {
        if (await healthz(port, fs.readFileSync(caFile))) {
          ready = true;
          break;
        }
      }
      await sleep(100);
    }
    if (ready) {
      const info = JSON.parse(fs.readFileSync(path.join(dataDir, 'demo.json'), 'utf8'));
      return { port, dataDir, caFile: path.join(dataDir, 'ca.pem'), info, issuer: info.issuer, logs, stop, pid: child.pid };
    }
    const out = logs();
    await stop();
    lastError = new Error(`the gateway did not become ready on port ${port} (${exited ? `exited ${JSON.stringify(exited)}` : 'timeout'}):\n${out.slice(-3000)}`);
    if (!/address already in use/i.test(out)) break; // only a port race is worth another try
  }
  throw lastError;
}

/** RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30 s) of a base32 secret, for `step` (default: now). */
export async function totp(secretBase32, step = Math.floor(Date.now() / 1000 / 30)) {
  const { createHmac } = await import('node:crypto');
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secretBase32.replace(/=+$/, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`invalid base32 character ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', key).update(msg).digest();
  const off = h[h.length - 1] & 0x0f;
  const n = (h.readUInt32BE(off) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

const AUDIT_MARKER = 'vigie-tests-audit-marker/';

const auditFile = (demo) => path.join(demo.dataDir, 'audit.jsonl');

function readAudit(demo) {
  const file = auditFile(demo);
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/**
 * The whole audit trail of everything the gateway did before this call, without the markers.
 * The gateway's audit writer is one FIFO queue: this sends a request it audits (an /authorize
 * without parameters, refused, under a user agent of its own) and waits until that line is
 * written, so every event recorded before it is written too. Checks that a line is absent, or
 * counts of lines, read this rather than the file at once (a line may still be queued).
 */
export async function settledAudit(demo, timeoutMs = 10_000) {
  const marker = `${AUDIT_MARKER}${randomUUID()}`;
  const status = await new Promise((resolve, reject) => {
    https.get({
      host: '127.0.0.1', servername: 'localhost', port: demo.port, path: '/authorize', ca: fs.readFileSync(demo.caFile),
      headers: { host: `localhost:${demo.port}`, 'user-agent': marker },
    }, (res) => {
      res.resume();
      resolve(res.statusCode);
    }).on('error', reject);
  });
  if (status !== 400) throw new Error(`an /authorize without parameters is refused with 400 (the audit marker), got ${status}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = readAudit(demo);
    const at = lines.findIndex((l) => l.user_agent === marker);
    if (at >= 0) return lines.slice(0, at).filter((l) => !String(l.user_agent ?? '').startsWith(AUDIT_MARKER));
    if (Date.now() > deadline) throw new Error(`the audit marker was not written within ${timeoutMs} ms`);
    await sleep(20);
  }
}
