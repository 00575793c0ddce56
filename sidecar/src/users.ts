import { execFileSync } from 'node:child_process';

// The local user database, asked where lodged needs a name's uid and gid: who may
// connect (the Apache user), whose files are never an app's.

/** The uid and gid of a local user, or undefined when there is none. */
export function lookupUser(name: string): { uid: number; gid: number } | undefined {
  try {
    const out = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).split(':');
    return { uid: Number(out[2]), gid: Number(out[3]) };
  } catch {
    return undefined; // getent exits 2 for an unknown name
  }
}
