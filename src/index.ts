// The library API. The CLI (cli.ts) is a thin face over these functions.
export { loadConfig, requireApiKey, newRunId, ConfigError, type Config } from './config.js';
export { EXIT, type ExitCode } from './exitCodes.js';
export { createLogger, silentLogger, type Logger } from './logger.js';
export { runMigration, exitCodeOf, type RunOptions, type RunResult } from './commands/run.js';
export { ingestSources, type IngestCommandOptions } from './commands/ingest.js';
export { startWorkers, type Workers } from './commands/work.js';
export { reportRun } from './commands/report.js';
export { retryRun, isTransientFailure, type RetryOptions, type RetryResult } from './commands/retry.js';
export { runStatus, type RunStatus } from './commands/status.js';
export { addSchedule, schedules, deleteSchedule } from './commands/schedule.js';
export { expandTemplate } from './schedule/template.js';
export { startSandbox, type Sandbox, type SandboxOptions } from './sandbox/index.js';
export { RevenueCatClient, type ApiResult } from './revenuecat/client.js';
export { classify, type Classification } from './revenuecat/classify.js';
export { RunLedger } from './ledger/runLedger.js';
export type { Summary } from './reports/summary.js';
export type { Outcome, Rejection, Duplicate, ReceiptJobData } from './types.js';
