import * as fs from 'node:fs';
import * as path from 'node:path';
import { Files } from './site';

// This repository's node_modules (dist/test/helpers -> <root>/node_modules).
const ROOT_MODULES = path.resolve(__dirname, '..', '..', '..', 'node_modules');

/**
 * A tenant's node_modules with these packages and everything they depend on, copied
 * from this repository's (where npm installed them as dev dependencies): the tenant
 * uploads its packages, Lodge installs nothing. Files under `node_modules/`, for startSite.
 */
export function tenantModules(names: string[]): Files {
  const files: Files = {};
  const seen = new Set<string>();
  const add = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const dir = path.join(ROOT_MODULES, name);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    copyTree(dir, `node_modules/${name}`, files);
    for (const dep of Object.keys(manifest.dependencies ?? {})) add(dep);
  };
  for (const n of names) add(n);
  return files;
}

function copyTree(dir: string, rel: string, files: Files): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    // A package's own nested node_modules (a version that differs from the top's) comes along too.
    if (e.isDirectory()) copyTree(p, `${rel}/${e.name}`, files);
    else if (e.isFile()) files[`${rel}/${e.name}`] = fs.readFileSync(p);
  }
}
