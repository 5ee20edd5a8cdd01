/**
 * `berth secrets ...`: a project's per-tenant secrets, read and written in its store
 * directly, so they work whether or not Berth runs (SQLite WAL lets both write).
 */
import { BerthError } from '../errors.js';
import { SecretStore, type OAuth2ConnectionInput } from '../secrets/index.js';
import { resolveDataDir } from './target.js';

export interface SecretsFlags {
  /** The subcommand and its arguments: set <tenant> <name> [value], get, list, rm, set-oauth2. */
  args: string[];
  /** set-oauth2's fields, as given by flags. */
  oauth2: Partial<Record<'tokenUrl' | 'clientId' | 'clientSecret' | 'refreshToken' | 'scope' | 'clientAuth', string>>;
  dir?: string;
  dataDir?: string;
}

const say = (line: string) => process.stdout.write(`${line}\n`);

/** The arguments each subcommand takes, for checking them before the store is opened. */
const SUBCOMMANDS: Record<string, { args: string[]; optional?: string }> = {
  set: { args: ['<tenant>', '<name>'], optional: '[value]' },
  get: { args: ['<tenant>', '<name>'] },
  list: { args: ['<tenant>'] },
  rm: { args: ['<tenant>', '<name>'] },
  'set-oauth2': { args: ['<tenant>', '<name>'] },
};

const REQUIRED_OAUTH2_FIELDS = ['tokenUrl', 'clientId', 'clientSecret', 'refreshToken'] as const;

export async function secrets(flags: SecretsFlags): Promise<number> {
  const [action = '', ...args] = flags.args;
  const shape = SUBCOMMANDS[action];
  if (!shape) {
    throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: `\`berth secrets ${action}\``, problem: `is not a secrets command; use one of ${Object.keys(SUBCOMMANDS).join(', ')} (berth --help shows them).` });
  }
  const max = shape.args.length + (shape.optional ? 1 : 0);
  if (args.length < shape.args.length || args.length > max) {
    throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: `\`berth secrets ${action}\``, problem: `takes ${[...shape.args, shape.optional ?? ''].join(' ').trim()}, got ${args.length} argument${args.length === 1 ? '' : 's'}.` });
  }
  const [tenant = '', name = '', value] = args;

  const { openSqliteStore } = await import('../store/index.js');
  const store = openSqliteStore(resolveDataDir(flags, 'secrets'));
  const secrets = new SecretStore(store);
  try {
    switch (action) {
      case 'set':
        // From stdin unless given, so the value stays out of shell history and `ps`.
        await secrets.set(tenant, name, value === undefined || value === '-' ? (await readStdin('the value')).replace(/\r?\n$/, '') : value);
        say(`berth: stored secret "${name}" for tenant "${tenant}"`);
        return 0;
      case 'set-oauth2': {
        const given = Object.fromEntries(Object.entries(flags.oauth2).filter(([, v]) => v !== undefined));
        const fromStdin = REQUIRED_OAUTH2_FIELDS.every((field) => field in given) ? {} : await readJsonObject();
        // Flags win over stdin; set() validates the merged connection.
        await secrets.set(tenant, name, { ...fromStdin, ...given } as OAuth2ConnectionInput);
        say(`berth: stored OAuth2 connection "${name}" for tenant "${tenant}"; its access token is fetched at first use`);
        return 0;
      }
      case 'get': {
        // What a step would receive: an OAuth2 connection gives a valid access token.
        const resolved = await secrets.resolve(tenant, [name]);
        say(resolved[name]!);
        return 0;
      }
      case 'list': {
        const listed = await secrets.list(tenant);
        if (listed.length === 0) {
          say(`No secrets for tenant "${tenant}". Add one with: berth secrets set ${tenant} <name>`);
          return 0;
        }
        const width = Math.max(4, ...listed.map((s) => s.name.length));
        say(`${'NAME'.padEnd(width)}  KIND    UPDATED`);
        for (const s of listed) say(`${s.name.padEnd(width)}  ${s.kind.padEnd(6)}  ${new Date(s.updatedAt).toISOString()}`);
        return 0;
      }
      default: {
        // rm, the one subcommand left
        if (!(await secrets.delete(tenant, name))) throw new BerthError('BERTH_ERR_SECRET_NOT_FOUND', { tenant, name });
        say(`berth: deleted secret "${name}" of tenant "${tenant}"`);
        return 0;
      }
    }
  } finally {
    await store.close();
  }
}

async function readStdin(what: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write(`Enter ${what}, then press Ctrl-D:\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function readJsonObject(): Promise<Record<string, unknown>> {
  const text = await readStdin('the OAuth2 connection as JSON');
  const missing = `The fields not given as flags (--token-url, --client-id, --client-secret, --refresh-token) are read from stdin as a JSON object, e.g. {"clientSecret":"…","refreshToken":"…"}`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: 'stdin', problem: `is not valid JSON (${text.trim() === '' ? 'it is empty' : (err as Error).message}). ${missing}.` });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: 'stdin', problem: `is JSON but not an object. ${missing}.` });
  }
  return value as Record<string, unknown>;
}
