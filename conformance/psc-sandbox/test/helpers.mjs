// Helpers for the stand-in's self-test: start the real CLI, a PKI made with the openssl CLI, and a fetch that
// speaks TLS with a client certificate (node's global fetch cannot present one without undici's Agent).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SERVER = path.join(HERE, '..', 'server.mjs');

export function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'psc-sandbox-test-'));
}

// Runs the CLI, resolves once it printed `PSC-SANDBOX READY <issuer>` (contract C1).
export function startCli(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`sandbox did not get ready in 10 s\nstdout: ${out}\nstderr: ${err}`));
    }, 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^PSC-SANDBOX READY (\S+)\n/m.exec(out);
      if (m) {
        clearTimeout(timer);
        const issuer = m[1];
        resolve({ child, issuer, origin: new URL(issuer).origin, stdout: () => out, stderr: () => err });
      }
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`sandbox exited with ${code}: ${err}`), { code, stderr: err, stdout: out }));
    });
  });
}

// Runs the CLI expecting it to refuse to start; resolves with its exit code and stderr.
export function runCliExpectingFailure(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SERVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let out = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.stdout.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill(), 10000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr: err, stdout: out });
    });
  });
}

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

// A server CA and server certificate for 127.0.0.1, a client CA with a client certificate `CN=vigie,O=CH Demo`,
// and a second client certificate with the same subject from a CA the sandbox does not trust.
export function makePki(dir) {
  const ext = path.join(dir, 'ext.cnf');
  fs.writeFileSync(
    ext,
    '[srv]\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n[cli]\nextendedKeyUsage=clientAuth\n',
  );
  const ca = (name, cn) =>
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.pem`,
        '-days',
        '2',
        '-subj',
        `/CN=${cn}`,
      ],
      dir,
    );
  const leaf = (name, subj, caName, section) => {
    openssl(
      ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj],
      dir,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        `${caName}.pem`,
        '-CAkey',
        `${caName}.key`,
        '-CAcreateserial',
        '-out',
        `${name}.pem`,
        '-days',
        '2',
        '-extfile',
        ext,
        '-extensions',
        section,
      ],
      dir,
    );
  };
  ca('server-ca', 'Test PSC server CA');
  ca('client-ca', 'Test client CA');
  ca('rogue-ca', 'Rogue client CA');
  leaf('server', '/CN=127.0.0.1', 'server-ca', 'srv');
  leaf('client', '/O=CH Demo/CN=vigie', 'client-ca', 'cli');
  leaf('rogue', '/O=CH Demo/CN=vigie', 'rogue-ca', 'cli');
  const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    dir,
    serverCa: read('server-ca.pem'),
    client: { cert: read('client.pem'), key: read('client.key') },
    rogue: { cert: read('rogue.pem'), key: read('rogue.key') },
  };
}

// A Fetch API function over node's http/https, with optional TLS client certificate and trusted CA.
// Never follows redirects (the tests look at each one).
export function nodeFetch({ ca, cert, key } = {}) {
  return async (input, init = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const headers = Object.fromEntries(new Headers(init.headers ?? {}).entries());
    let body = init.body;
    if (body instanceof URLSearchParams) body = body.toString();
    if (body !== undefined && body !== null && typeof body !== 'string' && !Buffer.isBuffer(body)) {
      body = Buffer.from(await new Response(body).arrayBuffer());
    }
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method: init.method ?? 'GET',
          headers,
          ...(url.protocol === 'https:' ? { ca, cert, key } : {}),
          agent: false,
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const h = new Headers();
            for (const [k, v] of Object.entries(res.headers)) {
              for (const one of [v].flat()) h.append(k, one);
            }
            const status = res.statusCode;
            const noBody = status === 204 || status === 205 || status === 304;
            resolve(new Response(noBody ? null : Buffer.concat(chunks), { status, headers: h }));
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (init.signal) {
        init.signal.addEventListener('abort', () => req.destroy(new Error('aborted')));
      }
      if (body !== undefined && body !== null) req.write(body);
      req.end();
    });
  };
}

export async function control(origin, route, body, fetchImpl = fetch) {
  const res = await fetchImpl(`${origin}/__control/${route}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`control ${route}: ${res.status} ${text}`);
  return JSON.parse(text);
}
