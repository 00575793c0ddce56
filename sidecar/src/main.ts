// First: V8's settings hold only for what is allocated after them.
import './v8-flags';
import * as fs from 'node:fs';
import { ConfigError } from './errors';
import { loadConfig } from './config/load';
import { log, openLog } from './log';
import { initWatchdogs } from './watchdog';
import { Registry } from './pool/registry';
import { trimHeap } from './heap-trim';
import { listen } from './server/listener';
import { lookupUser } from './users';
import { listenControl } from './server/control';
import { controlPath } from './status/control-protocol';
import { StatusModel } from './status/model';
import { StatusWeb } from './status/web';
import { DashboardWeb } from './status/dashboard-web';
import { LODGED_OPTIONS, UsageError, lodgedArgs, readArgs } from './cli/args';

const HELP = `usage: lodged [--config FILE] [--socket PATH] [--python PATH] [--node PATH]

The Lodge process manager: takes requests from mod_lodge on a unix socket and runs
each app in its own worker processes, as the app's owner.

  --config FILE   lodged's JSON settings (every key has a default)
  --socket PATH   listen here instead of the settings' "socket"
  --python PATH   the interpreter of WSGI apps, instead of the settings' "python"
  --node PATH     the node of Node.js apps, instead of the settings' "node"
                  (mod_lodge gives both from the host's LodgeRuntimes)
`;

export async function lodgedMain(argv: string[]): Promise<number> {
  let args;
  try {
    args = readArgs(argv, LODGED_OPTIONS, lodgedArgs);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`lodged: ${err.message}\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const { config: configFile, socket: socketOverride, python, node } = args;
  let settings;
  try {
    settings = loadConfig(configFile);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`lodged: ${err.message}\nlodged: not started\n`);
      return 78; // EX_CONFIG
    }
    throw err;
  }
  if (socketOverride) settings.socket = socketOverride;
  if (python) settings.python = python;
  if (node) settings.node = node;
  openLog(settings.log);
  const wd = initWatchdogs();
  const asRoot = process.getuid!() === 0;
  const apache = lookupUser(settings.apacheUser);
  if (asRoot && !apache) log.warn(`Apache user '${settings.apacheUser}' does not exist; only root may connect`);
  // A wave of idle apps reaped: the memory their cold starts took is given back.
  const registry = new Registry(settings, asRoot, trimHeap);
  // The status model every view reads: lodge status, the host page, the metrics.
  const status = new StatusModel(registry, { enforcement: () => wd.describe() });
  const web = new StatusWeb(status, undefined, undefined, new DashboardWeb(status));
  const server = await listen(
    { socketPath: settings.socket, allowUids: apache ? [apache.uid] : [], socketGid: apache?.gid },
    registry,
    web,
  );
  const control = await listenControl(controlPath(settings.socket), status);
  log.info(`listening on ${settings.socket}${asRoot ? '' : ' (not root: every app runs as ' + process.getuid!() + ')'}`);
  if (settings.pidFile) writePidFile(settings.pidFile);
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    const deadline = Date.now() + settings.shutdownTimeout * 1000;
    log.info(`${sig}: finishing ${registry.inFlight()} request(s) in flight, then stopping (at most ${settings.shutdownTimeout} s)`);
    server.close();
    web.close();
    control.close();
    registry.stopping = true;
    const poll = setInterval(() => {
      const busy = registry.inFlight();
      if (busy > 0 && Date.now() < deadline) return;
      clearInterval(poll);
      if (busy > 0) log.warn(`stopping with ${busy} request(s) still running`);
      registry.close();
      log.info('stopped');
      setTimeout(() => process.exit(0), 50);
    }, 50);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return -1; // keeps running
}

// Written once lodged listens, so that its presence means "ready"; removed at exit
// unless another lodged has written its own pid there since.
function writePidFile(file: string): void {
  const mine = `${process.pid}\n`;
  const tmp = `${file}.${process.pid}`;
  fs.writeFileSync(tmp, mine);
  fs.renameSync(tmp, file);
  process.on('exit', () => {
    try {
      if (fs.readFileSync(file, 'utf8') === mine) fs.unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`cannot remove the pid file ${file}: ${(err as Error).message}`);
    }
  });
}

if (require.main === module) {
  lodgedMain(process.argv.slice(2)).then(
    (code) => { if (code >= 0) process.exit(code); },
    (err) => {
      process.stderr.write(`lodged: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
