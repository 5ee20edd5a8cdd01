#!/usr/bin/env node
/**
 * Stores the demo customers' credentials as Berth secrets, the way you would store real ones:
 * `berth secrets set <customer> <NAME>` with the value on stdin (never in argv or shell history).
 *
 *   export BERTH_MASTER_KEY=$(openssl rand -hex 32)
 *   node examples/integration/setup.mjs             # acme and globex
 *   node examples/integration/setup.mjs globex      # only globex
 *
 * The values are the ones the stand-ins accept (stand-ins/accounts.mjs). It works whether or not
 * Berth is running: a running instance reads the new values at the next run.
 * BERTH_BIN may name the berth CLI's script; by default it is this repository's bin/berth.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_ACCOUNTS } from './stand-ins/accounts.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

function berthCli() {
  if (process.env.BERTH_BIN) return process.env.BERTH_BIN;
  const inRepo = path.resolve(here, '../../bin/berth');
  if (existsSync(inRepo)) return inRepo;
  try {
    // Berth installed as a dependency of the project this example was copied into.
    return path.join(path.dirname(createRequire(path.join(here, 'x.js')).resolve('berth/package.json')), 'bin', 'berth');
  } catch {
    fail('cannot find the berth CLI; set BERTH_BIN to its bin/berth');
  }
}

function fail(message) {
  console.error(`setup: ${message}`);
  process.exit(1);
}

if (!process.env.BERTH_MASTER_KEY && !process.env.BERTH_MASTER_KEY_FILE) {
  fail('secrets are encrypted with a master key; set one first (and keep it):\n  export BERTH_MASTER_KEY=$(openssl rand -hex 32)');
}
const customers = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(DEMO_ACCOUNTS);
const berth = berthCli();
for (const customer of customers) {
  const secrets = DEMO_ACCOUNTS[customer];
  if (!secrets) fail(`unknown customer "${customer}"; the demo has ${Object.keys(DEMO_ACCOUNTS).join(' and ')}`);
  for (const [name, value] of Object.entries(secrets)) {
    const result = spawnSync(process.execPath, [berth, 'secrets', 'set', customer, name, '--dir', here], { input: value, stdio: ['pipe', 'inherit', 'inherit'] });
    if (result.status !== 0) fail(`berth secrets set ${customer} ${name} failed (exit ${result.status ?? result.signal})`);
  }
}
console.log(`setup: stored DROPBOX_TOKEN and PARTNER_TOKEN for ${customers.join(' and ')}. Start Berth with: npx berth start ${path.relative(process.cwd(), here) || '.'}`);
