/**
 * Two modules that @pulumi/pulumi loads eagerly and a program run never touches: the
 * Automation API (sdk/nodejs/automation, which pulls in npm's own libraries) and the
 * TypeScript compiler (sdk/nodejs/typescript-shim.ts, for closure serialization).
 * Loading them was a third of the offline plan's start-up. Imported before the SDK,
 * this stands a placeholder for each that loads the real module on first use, so
 * anything that does use them still gets them, unchanged.
 */
import Module from "node:module";

for (const id of ["@pulumi/pulumi/automation", "@pulumi/pulumi/typescript-shim"]) deferLoading(id);

function deferLoading(id: string): void {
  const file = require.resolve(id);
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
  // The SDK imports both with TypeScript's __importStar, which reads __esModule
  // first: answered without loading. Anything else loads the module.
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
