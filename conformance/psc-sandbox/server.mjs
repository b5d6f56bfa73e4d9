#!/usr/bin/env node
// TEST FIXTURE — not part of Vigie, and not Pro Santé Connect.
// A stand-in for PSC (an OpenID Connect provider run by ANS) built on npm `oidc-provider`, configured the way
// /work/shared/reference/psc.md §1–§2 describes PSC. Contract C1: `node server.mjs --config FILE.json | --demo`,
// prints `PSC-SANDBOX READY <issuer>` on stdout when listening; everything else goes to stderr.
import { parseArgs } from 'node:util';
import process from 'node:process';

// stdout carries one line, the READY line (C1): oidc-provider's notices (console.info) go to stderr, and a
// reader that stops reading stdout after that line must not crash the stand-in.
console.info = console.error;
console.log = console.error;
process.stdout.on('error', () => {});

import { loadConfig, demoConfig } from './lib/config.mjs';
import { startSandbox } from './lib/sandbox.mjs';

const USAGE = `usage: node server.mjs --config FILE.json
       node server.mjs --demo
TEST FIXTURE: a Pro Santé Connect stand-in. See README.md.`;

function args() {
  try {
    const { values } = parseArgs({
      options: {
        config: { type: 'string' },
        demo: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    });
    return values;
  } catch (err) {
    process.stderr.write(`psc-sandbox: ${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
}

const opts = args();
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (Boolean(opts.config) === opts.demo) {
  process.stderr.write(`psc-sandbox: give exactly one of --config FILE or --demo\n${USAGE}\n`);
  process.exit(2);
}

let config;
try {
  config = opts.demo ? demoConfig() : loadConfig(opts.config);
} catch (err) {
  process.stderr.write(`psc-sandbox: ${err.message}\n`);
  process.exit(2);
}

try {
  const sandbox = await startSandbox(config);
  process.stdout.write(`PSC-SANDBOX READY ${sandbox.issuer}\n`);
  const stop = () => {
    sandbox.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} catch (err) {
  process.stderr.write(`psc-sandbox: could not start: ${err.stack || err.message}\n`);
  process.exit(1);
}
