/**
 * Modules that @pulumi/pulumi loads eagerly and a program run never touches: the
 * Automation API (sdk/nodejs/automation), npm's Arborist (for closure serialization's
 * package lookup, sdk/nodejs/runtime/closure/codePaths.ts) and the TypeScript compiler
 * (sdk/nodejs/typescript-shim.ts). Loading them was most of the SDK's start-up (0.65 s
 * of CPU; 0.18 s without). Imported before the SDK, this stands a placeholder for
 * each that loads the real module on first use, so anything that does use them still
 * gets them, unchanged.
 */
import Module from "node:module";
import path from "node:path";

const sdk = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
for (const id of ["@pulumi/pulumi/automation", "@pulumi/pulumi/typescript-shim", "@npmcli/arborist"]) {
  deferLoading(require.resolve(id, { paths: [sdk] }));
}

function deferLoading(file: string): void {
  // Already loaded (the SDK was imported first): nothing left to save.
  if (require.cache[file]) return;
  let real: Record<string | symbol, unknown> | undefined;
  const load = () => {
    if (!real) {
      delete require.cache[file];
      real = require(file) as Record<string | symbol, unknown>;
    }
    return real;
  };
  // The SDK imports them with TypeScript's __importStar, which returns a module that
  // says __esModule as it is: answered without loading. Anything else loads it.
  const target = {};
  Object.defineProperty(target, "__esModule", { value: true });
  const placeholder = new Module(file);
  placeholder.filename = file;
  placeholder.loaded = true;
  placeholder.exports = new Proxy(target, {
    get: (_, key) => (key === "__esModule" ? true : load()[key]),
    has: (_, key) => key in load(),
    ownKeys: () => Reflect.ownKeys(load()),
    getOwnPropertyDescriptor: (t, key) =>
      key === "__esModule" ? Reflect.getOwnPropertyDescriptor(t, key) : Reflect.getOwnPropertyDescriptor(load(), key),
  });
  require.cache[file] = placeholder;
}
