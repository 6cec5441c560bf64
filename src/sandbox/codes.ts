// v1 error codes the sandbox answers with. Real ones come from RevenueCat's SDK sources;
// RevenueCat publishes no code for a rate-limited request or an unknown route, so the sandbox uses two of its
// own, chosen outside the known range's meanings and easy to recognise (status-like). Clients must key on the
// HTTP status for those two, as they would against the real API.
export const CODES = {
  invalidPlatform: 7000,
  storeProblem: 7101,
  cannotTransfer: 7102,
  invalidReceipt: 7103,
  invalidPaymentMode: 7105,
  googleProductIdMissing: 7106,
  internalError: 7110,
  emptyAppUserId: 7220,
  invalidAuthToken: 7224,
  invalidApiKey: 7225,
  badRequest: 7226,
  playStoreQuota: 7229,
  invalidAppUserId: 7256,
  tooManyReceipts: 7636,
  requestInProgress: 7638,
  productMissingInReceipt: 7712,
  purchaseBelongsToOtherUser: 7852,
  /** Sandbox-only. */
  rateLimited: 7429,
  /** Sandbox-only. */
  notFound: 7404,
} as const;
