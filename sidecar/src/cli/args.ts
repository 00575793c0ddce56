import { parseArgs } from 'node:util';
import { z } from 'zod';

// The command lines of `lodged` and `lodge sandbox`, each with a schema: options are
// read by node's parseArgs (strict: an unknown option or a missing value is refused),
// then their values checked by zod (numbers are integers in range, choices are one of
// theirs, unknown keys refused), so that an option is either declared here or an error.

export class UsageError extends Error {}

type OptionKinds = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** `argv` read by `options` and checked by `schema`; UsageError says what was expected and what came. */
export function readArgs<S extends z.ZodType>(argv: string[], options: OptionKinds, schema: S): z.output<S> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, unknown>;
  } catch (err) {
    // parseArgs's own words, which name the option ("Unknown option '--x'").
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  const r = schema.safeParse(values);
  if (r.success) return r.data;
  throw new UsageError(
    r.error.issues
      .map((i) => {
        if (i.code === 'unrecognized_keys') return `unknown option ${i.keys.map((k) => `--${k}`).join(', ')}`;
        const key = String(i.path[0] ?? '');
        return `--${key} takes ${i.message}, got '${String(values[key])}'`;
      })
      .join('; '),
  );
}

const path = z.string().min(1, { error: 'a path' });

export const LODGED_OPTIONS: OptionKinds = {
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string' },
  socket: { type: 'string' },
  python: { type: 'string' },
  node: { type: 'string' },
};

export const lodgedArgs = z
  .object({
    help: z.boolean().default(false),
    config: path.optional(),
    socket: z.string().startsWith('/', { error: 'an absolute path' }).optional(),
    python: z.string().startsWith('/', { error: 'an absolute path' }).optional(),
    node: z.string().startsWith('/', { error: 'an absolute path' }).optional(),
  })
  .strict();

export const SANDBOX_OPTIONS: OptionKinds = {
  help: { type: 'boolean', short: 'h' },
  root: { type: 'string' },
  port: { type: 'string' },
  apache: { type: 'string' },
  config: { type: 'string' },
  keep: { type: 'boolean' },
  demo: { type: 'boolean' },
  'no-access-log': { type: 'boolean' },
  h2c: { type: 'boolean' },
  bare: { type: 'boolean' },
};

const port = z
  .string()
  .regex(/^[1-9][0-9]{0,4}$/, { error: 'a port number from 1 to 65535' })
  .transform(Number)
  .pipe(z.number().int().max(65535, { error: 'a port number from 1 to 65535' }));

export const sandboxArgs = z
  .object({
    help: z.boolean().default(false),
    root: path.optional(),
    port: port.default(8080),
    apache: z.enum(['2.4', '1.3'], { error: '2.4 or 1.3' }).default('2.4'),
    config: path.optional(),
    keep: z.boolean().default(false),
    demo: z.boolean().default(false),
    'no-access-log': z.boolean().default(false),
    h2c: z.boolean().default(false),
    bare: z.boolean().default(false),
  })
  .strict();
