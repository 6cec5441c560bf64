// Public surface of the RevenueCat sandbox (see README.md in this folder).
export { startSandbox, type Sandbox } from './server.js';
export {
  DEFAULT_SANDBOX_OPTIONS,
  SandboxOptionsError,
  parseSandboxOptions,
  resolveSandboxOptions,
  sandboxOptionsSchema,
  type ParsedSandboxOptions,
  type RateLimitHeaders,
  type ResolvedSandboxOptions,
  type SandboxOptions,
} from './options.js';
export type { KeyStats, ReceiptPostCount, ReceiptPostStats, SandboxStats, V2Stats } from './stats.js';
export type { TimelineBucket, TimelineStats } from './timeline.js';
export { parseScheduleText, type RateLimitState, type RateLimitStep, type V1Limits } from './rateSchedule.js';
export type { WindowKind } from './rateLimiter.js';
export { keyLabel, type KeyState } from './apiKeys.js';
export { PLATFORMS as SANDBOX_PLATFORMS, type Platform as SandboxPlatform } from './contract/platforms.js';
export type { PurchasePatch, SandboxEnvironment } from './store.js';
export { ROUTE_V2_ACTIVE_ENTITLEMENTS, ROUTE_V2_CUSTOMER, ROUTE_V2_ENTITLEMENTS, ROUTE_V2_PRODUCTS, ROUTE_V2_PURCHASES, ROUTE_V2_SUBSCRIPTIONS } from './v2.js';
export { v2Ids, type V2Customer, type V2Error, type V2List, type V2Product, type V2Purchase, type V2Subscription } from './viewV2.js';
export { DIRECTIVES, DIRECTIVE_PATTERN, readDirective, outcomeFor, type Directive, type DirectiveName, type TokenOutcome } from './tokens.js';
export { CODES as SANDBOX_CODES } from './codes.js';
export { DEFAULT_PRODUCT_ID, ROUTE_RECEIPTS, ROUTE_SUBSCRIBER } from './app.js';
export { SANDBOX_ENTITLEMENT, type SubscriberEnvelope, type SubscriberJson } from './view.js';
export { RESTORE_BEHAVIORS, type AppleReceiptStats, type RestoreBehavior, type TransferRecord } from './applePurchases.js';
export { APPLE_FAULT_CODES, type AppleSandboxOptions } from './appleOptions.js';
export { APPLE_BASE_PATHS, ROUTE_APPLE_TRANSACTION, type AppStoreServerApiStats, type AppleApiState } from './appStoreServerApi.js';
export { APPLE_AUDIENCE } from './appleJwt.js';
export type { AppleEnvironment, AppleTransactionRecord } from './appleTransactions.js';
