import * as fs from 'node:fs';
import { RefusedError } from '../errors';
import type { DashboardApp } from '../protocol/schemas';
import { readDeclaration } from './declared-app';
import { HostRules, checkOwnership } from './ownership';

/** Whose dashboard a request opens: the app directory's tenant, as lodged found it. */
export interface DashboardOwner {
  root: string;
  uid: number;
  gid: number;
  /** The tenant's log, relative to the app directory (lodged's setting). */
  tenantLog: string;
}

/**
 * Checks an APP kind=dashboard as lodged checks an app: the directory's own file must
 * declare the app and LodgeDashboard (so a frame forged by anything that reaches the
 * socket as the web server's user opens only a dashboard its tenant opened over HTTP
 * anyway), and the directory must pass the ownership checks an app's does. The
 * dashboard then shows the apps of the directory's owner, and nobody else's.
 * Throws RefusedError.
 */
export function dashboardOwner(app: DashboardApp, rules: HostRules, asRoot: boolean): DashboardOwner {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(app.root);
  } catch (err) {
    throw new RefusedError(`dashboard: app directory ${app.root} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!st.isDirectory()) throw new RefusedError(`dashboard: ${app.root} is not a directory`);
  const declared = readDeclaration(app.root, app.config, asRoot ? st.uid : process.getuid!());
  if (!declared.dashboard) throw new RefusedError(`dashboard: ${app.config} declares no LodgeDashboard for ${app.root}`);
  const identity = checkOwnership(app.root, declared.entry, rules.minUid, asRoot, rules);
  return { root: app.root, uid: identity.uid, gid: identity.gid, tenantLog: rules.tenantLog };
}
