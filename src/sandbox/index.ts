// Public surface of the RevenueCat sandbox (see README.md in this folder).
export { startSandbox, type Sandbox } from './server.js';
export {
  DEFAULT_SANDBOX_OPTIONS,
  SandboxOptionsError,
  parseSandboxOptions,
  resolveSandboxOptions,
  sandboxOptionsSchema,
  type ResolvedSandboxOptions,
  type SandboxOptions,
} from './options.js';
export type { ReceiptPostCount, ReceiptPostStats, SandboxStats } from './stats.js';
export { DIRECTIVES, DIRECTIVE_PATTERN, readDirective, outcomeFor, type Directive, type DirectiveName, type TokenOutcome } from './tokens.js';
export { CODES as SANDBOX_CODES } from './codes.js';
export { DEFAULT_PRODUCT_ID } from './app.js';
export { SANDBOX_ENTITLEMENT, type SubscriberEnvelope, type SubscriberJson } from './view.js';
