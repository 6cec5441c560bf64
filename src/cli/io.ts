// Where the CLI writes and what it answers: stdout for the command's answer, stderr for logs and progress, and
// the exit code the process ends with. Tests give their own.
import { EXIT, type ExitCode } from '../exitCodes.js';

export interface CliIo {
  stdout: NodeJS.WritableStream;
  /** a terminal when `isTTY`: progress bars are drawn there */
  stderr: NodeJS.WriteStream;
  /** set by the command that ran */
  exitCode: ExitCode;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, exitCode: EXIT.OK };
}
