// Debian's Chromium for the browser tests, started by playwright-core (no browser downloaded):
// headless, started again when it dies while starting (seen in CI: SIGSEGV before the first
// page), which is the machine's trouble, not anything a test checks.
import fs from 'node:fs';

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** A headless Chromium, or an error saying how to install it. */
export async function launchChromium(attempts = 3) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (or set CHROMIUM)`);
  }
  for (let i = 1; ; i++) {
    try {
      return await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run'],
        timeout: 20_000,
      });
    } catch (e) {
      if (i >= attempts) throw e;
      console.error(`# Chromium did not start (attempt ${i}): ${String(e.message).split('\n')[0]}; starting it again`);
    }
  }
}
