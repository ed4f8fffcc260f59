#!/usr/bin/env node
/**
 * Part of `pnpm test`: the viewer's browser test drives Debian's chromium (never a browser download). When it is
 * missing, installs it with apt-get (as root, or with sudo that needs no password), so the README's test command
 * works on a fresh machine. Elsewhere it says what to install; the browser test then fails with the same advice.
 */
'use strict';
const { existsSync } = require('node:fs');
const { spawnSync } = require('node:child_process');

const target = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
if (existsSync(target)) process.exit(0);

const advice = `Chromium is missing at ${target}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH.`;
if (process.platform !== 'linux' || process.env.CHROMIUM_PATH || !existsSync('/usr/bin/apt-get')) {
  console.warn(advice);
  process.exit(0);
}
console.log('Installing Debian chromium for the viewer browser test (apt-get install chromium)...');
const root = typeof process.getuid === 'function' && process.getuid() === 0;
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const apt = (args) => {
  const [cmd, argv] = root ? ['apt-get', args] : ['sudo', ['-n', 'apt-get', ...args]];
  return spawnSync(cmd, argv, { stdio: 'inherit', env }).status === 0;
};
if (!(apt(['update']) && apt(['install', '-y', '--no-install-recommends', 'chromium'])) || !existsSync(target)) {
  console.warn(`Could not install chromium. ${advice}`);
}
