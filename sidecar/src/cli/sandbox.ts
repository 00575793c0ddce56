import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findApache, startSandbox } from '../sandbox/sandbox';
import { H2C_DIRECTIVES } from '../sandbox/apache-conf';
import { SANDBOX_OPTIONS, UsageError, readArgs, sandboxArgs } from './args';
import { findTenants, makeTenantUsers } from '../sandbox/tenants';

const HELP = `usage: lodge sandbox --root DIR [--port N] [--apache 2.4|1.3] [--config FILE] [--keep] [--no-access-log] [--h2c] [--bare]
       lodge sandbox --demo [--apache 2.4|1.3]

Runs a complete private host: a private Apache with mod_lodge and lodged, one
tenant per sub-folder of DIR at http://<folder>.localhost:N/, each folder's own
.htaccess in charge. The system Apache is never touched. Ctrl-C stops everything.

  --root DIR      the folder of tenant folders
  --port N        port on 127.0.0.1 (default 8080)
  --apache V      2.4 (default: Debian's apache2) or 1.3 (the Apache whose apxs
                  APXS13 names, with build/apache13/mod_lodge.so)
  --config FILE   lodged settings (JSON) to use
  --keep          keep the run directory (logs, generated config) after stopping
  --no-access-log Apache writes no access log (as the bench's other systems)
  --h2c           Apache 2.4 speaks HTTP/2 in the clear too (mod_http2, Protocols h2c
                  http/1.1), as the bench's h2 point has it
  --bare          Apache 2.4 loads only the modules Lodge needs (mpm_event,
                  authz_core) and follows symbolic links without an owner check,
                  as the bench's other systems run: for measuring, not hosting
  --demo          serve a copy of the bundled examples (as root: each tenant as a
                  Unix user of its own, created now and removed at the end)
`;

export async function sandboxMain(argv: string[]): Promise<number> {
  let args;
  try {
    args = readArgs(argv, SANDBOX_OPTIONS, sandboxArgs);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`lodge sandbox: ${err.message}\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  let root = args.root;
  const { port, keep, demo, apache, config: configFile } = args;
  const accessLog = !args['no-access-log'];
  if (args.h2c && apache !== '2.4') {
    process.stderr.write('lodge sandbox: --h2c is for Apache 2.4 (1.3 has no HTTP/2)\n');
    return 2;
  }
  if (args.bare && apache !== '2.4') {
    process.stderr.write('lodge sandbox: --bare is for Apache 2.4 (1.3 builds its modules in)\n');
    return 2;
  }
  const hostDirectives = args.h2c ? H2C_DIRECTIVES : undefined;
  // Before anything is copied or any user created: say at once what is missing.
  try {
    findApache(apache);
  } catch (err) {
    process.stderr.write(`lodge sandbox: ${(err as Error).message}\n`);
    return 1;
  }
  let cleanup = () => {};
  if (demo) {
    const examples = path.resolve(__dirname, '..', '..', '..', '..', 'examples');
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-demo-'));
    fs.chmodSync(copy, 0o755);
    fs.cpSync(examples, copy, { recursive: true });
    root = copy;
    const undoUsers = process.getuid!() === 0 ? makeTenantUsers(findTenants(copy)) : () => {};
    cleanup = () => {
      undoUsers();
      fs.rmSync(copy, { recursive: true, force: true });
    };
  }
  if (!root) {
    process.stderr.write(`lodge sandbox: --root DIR is required\n${HELP}`);
    return 2;
  }
  const lodged = configFile ? JSON.parse(fs.readFileSync(configFile, 'utf8')) : undefined;
  let sb;
  try {
    sb = await startSandbox({ root, port, lodged, keep, apache, accessLog, hostDirectives, bare: args.bare });
  } catch (err) {
    cleanup();
    throw err;
  }
  process.stdout.write(`Lodge sandbox on 127.0.0.1:${port}, Apache ${sb.apacheVersion} (logs in ${sb.runDir})\n`);
  for (const t of sb.tenants) process.stdout.write(`  ${sb.url(t.name)}   ${t.dir}\n`);
  process.stdout.write('lodge sandbox ready; Ctrl-C stops it\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await sb.stop();
  cleanup();
  process.stdout.write('lodge sandbox stopped\n');
  return 0;
}
