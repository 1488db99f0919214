/**
 * How the offline commands (npm run plan, status) end: with main's exit code, or on a
 * mistake of the caller's (an invalid config, a missing or malformed stack file) with
 * its message alone, no stack trace; anything else is a bug and shows its trace.
 */
import { ConfigError } from "../model";
import { PlanInputError } from "./config";

export function runCli(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof ConfigError || err instanceof PlanInputError) console.error(err.message);
      else console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}
