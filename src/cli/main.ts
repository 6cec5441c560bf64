// Runs one command line and answers with its exit code: the command's own, 2 for a usage or configuration
// error (with its message), 5 for anything unexpected.
import { CommanderError } from 'commander';
import { ConfigError } from '../config.js';
import { EXIT, type ExitCode } from '../exitCodes.js';
import { processIo, type CliIo } from './io.js';
import { buildProgram } from './program.js';

/** Errors a user can fix from the message alone (the sandbox's own options error is one: it shares no types). */
const isUsageError = (err: unknown): err is Error => err instanceof ConfigError || (err instanceof Error && err.name === 'SandboxOptionsError');

export async function main(argv: string[], io: CliIo = processIo()): Promise<ExitCode> {
  try {
    await buildProgram(io, argv).parseAsync(argv);
    return io.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with code 0; commander has printed its message.
      return err.exitCode === 0 ? EXIT.OK : EXIT.CONFIG;
    }
    if (isUsageError(err)) {
      io.stderr.write(`rc-migrate: ${err.message}\n`);
      return EXIT.CONFIG;
    }
    io.stderr.write(`rc-migrate: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.INTERNAL;
  }
}
