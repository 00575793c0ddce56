import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { portOpen, stopChild } from '../../sidecar/src/sandbox/sandbox';
import { freePort } from './site';

/** One WSGIScriptAlias, and the directives of its script's folder. */
export interface WsgiMount {
  url: string;
  script: string;
  directives?: string[];
}

/** A name-based virtual host of the reference server. */
export interface WsgiHost {
  name: string;
  documentRoot: string;
  mounts: WsgiMount[];
}

export interface ModWsgiServer {
  port: number;
  errorLog: string;
  stop(): Promise<void>;
}

const MODDIR = '/usr/lib/apache2/modules';
// The modules the sandbox's Apache 2.4 loads, so both servers see a request alike.
const MODULES = [
  'mpm_event', 'authz_core', 'authz_host', 'authz_user', 'authn_core', 'authn_file', 'auth_basic',
  'mime', 'dir', 'alias', 'env', 'headers', 'setenvif',
];

/**
 * The reference a tenant moves from: a private Apache 2.4 with Debian's mod_wsgi in
 * daemon mode (one process, one thread, as /work/shared/anchor-bench runs it), its
 * apps on the files given, the same host names and server settings as the sandbox.
 */
export async function startModWsgi(hosts: WsgiHost[]): Promise<ModWsgiServer> {
  const so = path.join(MODDIR, 'mod_wsgi.so');
  if (!fs.existsSync(so)) throw new Error(`${so} is missing: scripts/build.js installs libapache2-mod-wsgi-py3`);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-modwsgi-'));
  fs.chmodSync(runDir, 0o755);
  const port = await freePort();
  const asRoot = process.getuid!() === 0;
  const errorLog = path.join(runDir, 'error.log');
  const lines = [
    `ServerRoot "${runDir}"`,
    `DefaultRuntimeDir "${runDir}"`,
    `PidFile "${path.join(runDir, 'httpd.pid')}"`,
    `ErrorLog "${errorLog}"`,
    'LogLevel warn',
    'ServerName 127.0.0.1',
    `Listen 127.0.0.1:${port}`,
    ...(asRoot ? ['User www-data', 'Group www-data'] : []),
    ...MODULES.map((m) => `LoadModule ${m}_module ${MODDIR}/mod_${m}.so`),
    `LoadModule wsgi_module ${so}`,
    'ServerTokens Prod',
    'ServerSignature Off',
    'TraceEnable Off',
    'TypesConfig /etc/mime.types',
    `WSGISocketPrefix "${path.join(runDir, 'wsgi')}"`,
    'WSGIRestrictEmbedded On',
    // mod_wsgi answers a chunked upload 411 unless told; Lodge takes one (a host that
    // wants them sets this).
    'WSGIChunkedRequest On',
    'WSGIDaemonProcess reference processes=1 threads=1',
    '<Directory />',
    '  AllowOverride None',
    '  Require all denied',
    '</Directory>',
  ];
  for (const h of hosts) {
    lines.push(
      `<VirtualHost 127.0.0.1:${port}>`,
      `  ServerName ${h.name}`,
      `  DocumentRoot "${h.documentRoot}"`,
      `  <Directory "${h.documentRoot}">`,
      '    Require all granted',
      '  </Directory>',
    );
    for (const m of h.mounts) {
      lines.push(
        `  WSGIScriptAlias ${m.url} "${m.script}" process-group=reference application-group=%{GLOBAL}`,
        `  <Directory "${path.dirname(m.script)}">`,
        ...(m.directives ?? ['Require all granted']).map((d) => `    ${d}`),
        '  </Directory>',
      );
    }
    lines.push('</VirtualHost>');
  }
  const conf = path.join(runDir, 'httpd.conf');
  fs.writeFileSync(conf, lines.join('\n') + '\n');
  // Its output to a file, not to this test's: a daemon process that outlived its Apache
  // would hold the test runner's pipe open, and the runner wait for it.
  const out = fs.openSync(path.join(runDir, 'console.log'), 'a');
  let httpd: ChildProcess;
  try {
    httpd = spawn('/usr/sbin/apache2', ['-f', conf, '-DFOREGROUND'], { stdio: ['ignore', out, out] });
  } finally {
    fs.closeSync(out);
  }
  const stop = async () => {
    await stopChild(httpd, 15_000);
    fs.rmSync(runDir, { recursive: true, force: true });
  };
  const until = Date.now() + 15_000;
  while (!(await portOpen(port))) {
    if (httpd.exitCode !== null || Date.now() > until) {
      const log = fs.existsSync(errorLog) ? fs.readFileSync(errorLog, 'utf8') : '';
      await stop();
      throw new Error(`mod_wsgi's Apache did not start: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { port, errorLog, stop };
}

