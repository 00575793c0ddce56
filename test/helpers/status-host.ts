import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Browser, Page, chromium } from 'playwright-core';

// What the status tests share: the host's status location behind Basic auth, its
// password file, and a headless Chromium page that records console problems.

export const STATUS_USER = 'admin';
export const STATUS_PASSWORD = 'secret';

/** The host's status location, behind Basic auth, in the server config. */
export const statusLocation = (passwords: string): string[] => [
  '<Location /lodge-status>',
  '  SetHandler lodge-status',
  '  AuthType Basic',
  '  AuthName "Lodge status"',
  `  AuthUserFile "${passwords}"`,
  '  Require valid-user',
  '</Location>',
];

/** A folder Apache can read holding an htpasswd file for STATUS_USER; remove `dir` after. */
export function makePasswords(): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-auth-'));
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, 'htpasswd');
  // crypt(3): the one scheme both 1.3 and 2.4 read.
  fs.writeFileSync(file, execFileSync('htpasswd', ['-nbd', STATUS_USER, STATUS_PASSWORD]), { mode: 0o644 });
  return { dir, file };
}

/** Debian's Chromium, headless, with what this closed network needs turned off. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** A page whose console errors, warnings and uncaught errors land in `problems`. */
export async function watchedPage(browser: Browser, problems: string[], credentials?: { username: string; password: string }): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, httpCredentials: credentials });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  return page;
}
