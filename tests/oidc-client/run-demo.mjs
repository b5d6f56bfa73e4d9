// The parent half of the scripts that check Vigie with openid-client (crosscheck.mjs,
// fi-tiers.mjs): starts the embedded demo (free port, temporary data directory), re-runs the
// script with NODE_EXTRA_CA_CERTS pointing at the demo CA (Node reads that variable only at
// start-up, so every HTTPS request of the child is verified against it) and `env` set to what
// `payload(demo)` returns, in JSON. Stops the child after `timeoutSecs`, always stops the gateway,
// shows the gateway's warnings and errors when the child failed, and exits with its status.
import { spawn } from 'node:child_process';

import { startDemo } from './vigie-demo.mjs';

export async function runChildAgainstDemo({ script, label, env, payload, what, timeoutSecs }) {
  const started = Date.now();
  let demo;
  try {
    demo = await startDemo({ label });
  } catch (e) {
    console.error(`FAIL - could not start the demo gateway: ${e.message}`);
    process.exit(2);
  }
  console.log(`# demo gateway ${demo.issuer} (pid ${demo.pid}, data ${demo.dataDir})`);
  let code;
  try {
    code = await new Promise((resolve) => {
      const c = spawn(process.execPath, [script], {
        stdio: 'inherit',
        env: {
          ...process.env,
          NODE_EXTRA_CA_CERTS: demo.caFile,
          [env]: JSON.stringify(payload(demo)),
        },
      });
      const kill = () => c.kill('SIGTERM');
      process.once('SIGINT', kill);
      process.once('SIGTERM', kill);
      const timer = setTimeout(() => {
        console.error(`FAIL - ${what} took more than ${timeoutSecs} s: stopped`);
        c.kill('SIGKILL');
      }, timeoutSecs * 1000);
      c.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolve(code ?? (signal ? 1 : 0));
      });
    });
    if (code !== 0) {
      const tail = demo.logs().split('\n').filter((l) => /"level":"(WARN|ERROR)"|panick/i.test(l)).slice(-20).join('\n');
      if (tail) console.error(`# gateway warnings and errors:\n${tail}`);
    }
  } finally {
    await demo.stop();
  }
  console.log(`# gateway stopped; ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exit(code);
}
