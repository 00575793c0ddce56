#!/usr/bin/env node
import { lodgedMain } from '../main';
import { sandboxMain } from './sandbox';
import { statusMain } from './status';

const HELP = `usage: lodge <command> [options]

Commands:
  sandbox   run a private Apache (2.4 or 1.3) + lodged serving a folder of tenants
  lodged    run the process manager (what Apache or systemd starts)
  status    every app's state, workers, requests and recent events (--json, --watch)

Run 'lodge <command> --help' for a command's options.
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'sandbox':
      return sandboxMain(rest);
    case 'lodged':
      return lodgedMain(rest);
    case 'status':
      return statusMain(rest);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(HELP);
      return cmd ? 0 : 2;
    default:
      process.stderr.write(`lodge: unknown command '${cmd}'\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => { if (code >= 0) process.exitCode = code; },
  (err) => {
    process.stderr.write(`lodge: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
