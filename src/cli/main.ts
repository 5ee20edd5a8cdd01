/** cli: the `berth` command. Parses arguments and runs one command. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../package-root.js';
import { formatError, invoke, limits, logs, ls, sendMessage, start } from './commands.js';
import { flow } from './flow-commands.js';
import { secrets } from './secrets.js';

const USAGE = `Usage: berth <command> [options]

Commands:
  start [dir]            Start Berth on the project in dir (default .)
      --port N             port to listen on (default 3000; 0 picks a free one)
      --host H             address to bind (default 127.0.0.1)
      --data DIR           data directory (default <dir>/.berth)
  dev [dir]              Like start, and rebuild + reload on every change
  invoke <function>      Invoke a function and print its result
      --data JSON | --file F   the event (default {})
      --tenant T           run for this tenant
      --async              queue the event and print its invocation id (needs a running Berth)
      --idempotency-key K  a repeat with the same key does not run again (needs a running Berth)
      --url U | --dir D    the instance or project to use (default: found automatically)
  send <queue>           Send a message to a queue of the running Berth
      --data JSON | --file F   the body (a JSON string is sent as its text)
      --attr name=value    a message attribute (repeatable); name:Number=75 for a number
      --group G            message group (FIFO queues)
      --delay N            seconds before it becomes visible
      --idempotency-key K  a repeat with the same key is not sent again
  publish <topic>        Publish a message to a topic of the running Berth
      --data JSON | --file F, --attr name[:Type]=value, --subject S, --idempotency-key K
  logs <function>        Show a function's logs
      --follow, -f         keep printing new logs
      --limit N            how many invocations to show (default 20)
  ls                     List functions, routes, isolation and live environments
  flow ls                List the flows of the running Berth
  flow run <flow>        Run a flow and print its step timeline and output
      --data JSON | --file F   the run's input (default {})
      --tenant T           run it for this tenant (overrides the flow's own)
      --async              print the run id once the run is recorded, without waiting
  flow runs <flow>       List a flow's recent runs (--limit N)
  flow show <run id>     Show one run: every step's status, attempts, timing and error
  limits                 Show concurrency limits, what runs against them and throttles
  limits set K=V ...     Change limits live: account.concurrency=50 api.reserved=3
                         api.max=10 api.tenant=2 group.etl.max=100 account.syncWait=500
                         ("none" removes a limit); persisted, in force within a second
  bootstrap [file.export] Run a Lambda Node handler (default: $_HANDLER) against the Runtime
                         API at AWS_LAMBDA_RUNTIME_API: the bootstrap of a runtime: provided
                         function (exec berth bootstrap), or a container image's entrypoint
  secrets set <tenant> <name> [value]
                         Store a secret, encrypted; the value is read from stdin
                         when omitted or "-" (so it stays out of shell history)
  secrets get <tenant> <name>    Print it (an OAuth2 connection: a valid access token)
  secrets list <tenant>  Names, kinds and update times; never values
  secrets rm <tenant> <name>     Delete it
  secrets set-oauth2 <tenant> <name>
                         Store an OAuth2 connection; its access token is refreshed as needed
      --token-url U --client-id I --client-secret S --refresh-token R
      --scope S --client-auth basic|body (default basic)
                         fields not given as flags are read from stdin as JSON
      --dir D | --data DIR   the project, or its data directory (default: the project in .)
                         set, get and set-oauth2 need the master key: BERTH_MASTER_KEY
                         or BERTH_MASTER_KEY_FILE (README "Secrets")

  berth --version | --help`;

function numberFlag(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} expects a whole number, got "${value}"`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      'data-dir': { type: 'string' },
      file: { type: 'string' },
      tenant: { type: 'string' },
      url: { type: 'string' },
      dir: { type: 'string' },
      follow: { type: 'boolean', short: 'f', default: false },
      limit: { type: 'string' },
      async: { type: 'boolean', default: false },
      'idempotency-key': { type: 'string' },
      attr: { type: 'string', multiple: true },
      subject: { type: 'string' },
      group: { type: 'string' },
      delay: { type: 'string' },
      'token-url': { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'refresh-token': { type: 'string' },
      scope: { type: 'string' },
      'client-auth': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', short: 'v', default: false },
    },
  });
  const [command, arg] = positionals;
  if (values.version) {
    process.stdout.write(`${JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version}\n`);
    return 0;
  }
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !values.help ? 1 : 0;
  }
  const needFunction = () => {
    if (!arg) throw new Error(`\`berth ${command}\` needs a function name: berth ${command} <function>`);
    return arg;
  };
  switch (command) {
    case 'start':
    case 'dev':
      return start(
        {
          dir: arg ?? '.',
          port: numberFlag(values.port, 'port', 3000),
          host: values.host ?? '127.0.0.1',
          ...(values.data ? { dataDir: values.data } : {}),
        },
        command === 'dev',
      );
    case 'invoke':
      return invoke({
        functionName: needFunction(),
        ...(values.data !== undefined ? { data: values.data } : {}),
        ...(values.file !== undefined ? { file: values.file } : {}),
        ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
        ...(values.async ? { async: true } : {}),
        ...(values['idempotency-key'] !== undefined ? { idempotencyKey: values['idempotency-key'] } : {}),
        ...(values.url ? { url: values.url } : {}),
        ...(values.dir ? { dir: values.dir } : {}),
        ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
      });
    case 'send':
    case 'publish': {
      if (!arg) throw new Error(`\`berth ${command}\` needs a ${command === 'send' ? 'queue' : 'topic'} name: berth ${command} <name> --data '...'`);
      return sendMessage(command === 'send' ? 'queue' : 'topic', {
        name: arg,
        attributes: values.attr ?? [],
        ...(values.data !== undefined ? { data: values.data } : {}),
        ...(values.file !== undefined ? { file: values.file } : {}),
        ...(values.subject !== undefined ? { subject: values.subject } : {}),
        ...(values.group !== undefined ? { groupId: values.group } : {}),
        ...(values.delay !== undefined ? { delaySeconds: numberFlag(values.delay, 'delay', 0) } : {}),
        ...(values['idempotency-key'] !== undefined ? { idempotencyKey: values['idempotency-key'] } : {}),
        ...(values.url ? { url: values.url } : {}),
        ...(values.dir ? { dir: values.dir } : {}),
      });
    }
    case 'logs':
      return logs({
        functionName: needFunction(),
        follow: values.follow ?? false,
        limit: numberFlag(values.limit, 'limit', 20),
        ...(values.url ? { url: values.url } : {}),
        ...(values.dir ? { dir: values.dir } : {}),
        ...(values.data ? { dataDir: values.data } : {}),
      });
    case 'limits': {
      if (arg !== undefined && arg !== 'set') throw new Error(`unknown limits command "${arg}": use \`berth limits\` or \`berth limits set key=value ...\``);
      const assignments = positionals.slice(2);
      if (arg === 'set' && assignments.length === 0) throw new Error('`berth limits set` needs key=value pairs, e.g. berth limits set account.concurrency=50');
      return limits({ assignments, ...(values.url ? { url: values.url } : {}), ...(values.dir ? { dir: values.dir } : {}) });
    }
    case 'flow':
      return flow(arg, positionals[2], {
        ...(values.data !== undefined ? { data: values.data } : {}),
        ...(values.file !== undefined ? { file: values.file } : {}),
        ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
        ...(values.async ? { async: true } : {}),
        limit: numberFlag(values.limit, 'limit', 20),
        ...(values.url ? { url: values.url } : {}),
        ...(values.dir ? { dir: values.dir } : {}),
      });
    case 'secrets':
      return secrets({
        args: positionals.slice(1),
        oauth2: {
          tokenUrl: values['token-url'],
          clientId: values['client-id'],
          clientSecret: values['client-secret'],
          refreshToken: values['refresh-token'],
          scope: values.scope,
          clientAuth: values['client-auth'],
        },
        ...(values.dir ? { dir: values.dir } : {}),
        ...(values.data ? { dataDir: values.data } : {}),
      });
    case 'ls':
      return ls({ ...(values.url ? { url: values.url } : {}), ...(values.dir ? { dir: values.dir } : {}) });
    default:
      throw new Error(`unknown command "${command}". Run \`berth --help\` for the list.`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`berth: ${formatError(err)}\n`);
    process.exit(1);
  },
);
