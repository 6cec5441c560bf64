// The library API. The CLI (cli.ts, cli/) is a thin face over these functions: each validates its own options
// (options.ts) and answers with an exit code from one policy (exitCodes.ts).
export { loadConfig, requireApiKey, newRunId, ConfigError, CONFIG_FILE_ENV, type Config, type LoadConfigInput } from './config.js';
export { EXIT, exitCodeFor, type ExitCode, type Verdict } from './exitCodes.js';
export { createLogger, silentLogger, type Logger } from './logger.js';
export { runMigration, exitCodeOf, type RunOptions, type RunResult } from './commands/run.js';
export { ingestSources, type IngestCommandOptions } from './commands/ingest.js';
export { planMigration, type Plan, type PlanOptions, type PlanResult } from './commands/plan.js';
export { startWorkers, workExitCode, type WorkOptions, type Workers } from './commands/work.js';
export { reportRun } from './commands/report.js';
export { retryRun, isTransientFailure, type RetryOptions, type RetryResult } from './commands/retry.js';
export { runStatus, statusExitCode, type RunStatus } from './commands/status.js';
export { verifyMigration, type VerifyCommandOptions } from './commands/verify.js';
export { serveMonitor } from './commands/serve.js';
export { PipelineMetrics } from './metrics/metrics.js';
export { addSchedule, schedules, deleteSchedule } from './commands/schedule.js';
export { RunSession, type IngestStepRequest, type SessionEvents, type SessionListeners, type SessionOptions, type SessionResult, type SessionStep } from './session/runSession.js';
export { stopOnSignals, type ProcessStop } from './session/signals.js';
export { expandTemplate } from './schedule/template.js';
export { startSandbox, type Sandbox, type SandboxOptions } from './sandbox/index.js';
export { RevenueCatClient, type ApiResult } from './revenuecat/client.js';
export { classify, type Classification } from './revenuecat/classify.js';
export { RunLedger } from './ledger/runLedger.js';
export type { Summary } from './reports/summary.js';
export type { Outcome, Rejection, Duplicate, ReceiptJobData, RunState } from './types.js';
