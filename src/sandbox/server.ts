// The listening socket and its lifecycle. close() must be prompt even with requests hanging on purpose, so
// every socket is tracked and destroyed rather than waited for.
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { SandboxApp } from './app.js';
import { resolveSandboxOptions, type ResolvedSandboxOptions, type SandboxOptions } from './options.js';
import type { KeyState } from './apiKeys.js';
import type { AppleApiState } from './appStoreServerApi.js';
import type { TransferRecord } from './applePurchases.js';
import type { AppleTransactionRecord } from './appleTransactions.js';
import type { RateLimitState, RateLimitStep } from './rateSchedule.js';
import type { ReceiptPostCount, SandboxStats } from './stats.js';
import type { PurchasePatch } from './store.js';
import type { SubscriberJson } from './view.js';

export interface Sandbox {
  /** e.g. http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** The same object GET /_sandbox/stats returns. */
  stats(): SandboxStats;
  /** Change knobs live (limits, latency, faults, keys…). Throws SandboxOptionsError. */
  configure(patch: Partial<SandboxOptions>): void;
  /** Clear subscribers and counters; the knobs stay. */
  reset(): void;
  /** Closes the server and destroys open and hanging sockets promptly. */
  close(): Promise<void>;
  /** POSTs (and 2xx answers) seen for one (app_user_id, fetch_token) pair. */
  receiptPostCount(appUserId: string, fetchToken: string): { posts: number; successes: number };
  receiptPostCounts(): ReceiptPostCount[];
  /** The stored subscriber (attributes included), without creating it. */
  peekSubscriber(appUserId: string): SubscriberJson | undefined;
  /** Current knobs (the clock left out). */
  options(): Omit<ResolvedSandboxOptions, 'now'>;
  /** The v1 limit in force, the schedule and where it stands (also GET /_sandbox/rate-limit). */
  rateLimit(): RateLimitState;
  /** Replaces the v1 limit schedule and starts its clock; `[]` removes it. Throws SandboxOptionsError. */
  setRateLimitSchedule(schedule: RateLimitStep[] | string): void;
  /** The configured keys by label, with their platforms and whether revoked (also GET /_sandbox/keys). */
  keys(): KeyState[];
  /** From now on the key answers 401 / 7225 (also POST /_sandbox/keys/revoke). False when the key is not configured. */
  revokeKey(key: string): boolean;
  /** Undoes revokeKey (also POST /_sandbox/keys/restore). False when the key is not configured. */
  restoreKey(key: string): boolean;
  // State changes for reconciliation tests (also over HTTP: README.md, "Admin endpoints"). They do not move
  // last_seen and are not counted in stats.
  /** Deletes the subscriber and its aliases. False when there was none. */
  deleteSubscriber(appUserId: string): boolean;
  /** Removes every purchase of a product from the subscriber (a refund / revocation). False when it had none. */
  removePurchase(appUserId: string, productId: string): boolean;
  /** Moves a subscription's expiry (`expiresDateMs` in the past = expired) and/or sets the product's environment. */
  updatePurchase(appUserId: string, productId: string, patch: PurchasePatch): 'ok' | 'no_such_subscriber' | 'no_such_product' | 'not_a_subscription';
  /** Makes the subscriber an alias of `originalAppUserId`, as a transfer to / restore by another user does. */
  transferSubscriber(appUserId: string, originalAppUserId: string): boolean;
  // The App Store side (README.md, "App Store receipts" and "App Store Server API").
  /** App Store purchases moved from one App User ID to another since the last reset (also GET /_sandbox/transfers). */
  transfers(): TransferRecord[];
  /**
   * What a client needs to call the App Store Server API stand-in: key id, issuer id, the apps, and the `.p8`
   * key (PEM; also written to `appleKeyOut` when generated). Library callers only: no admin route shows the key.
   */
  appleCredentials(): { keyId: string; issuerId: string; bundleIds: string[]; privateKeyPem: string; keyFile: string | null };
  /** The App Store Server API's key id, apps, rate, revocation, base paths and signing certificate (also GET /_sandbox/apple). */
  appleApi(): AppleApiState;
  /** The transactions the App Store Server API knows (also GET /_sandbox/apple/transactions). */
  appleTransactions(): AppleTransactionRecord[];
}

export async function startSandbox(options?: SandboxOptions): Promise<Sandbox> {
  const resolved = resolveSandboxOptions(options);
  const app = new SandboxApp(resolved);
  const server = createServer((req, res) => void app.handle(req, res));
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(resolved.port, resolved.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = resolved.host.includes(':') ? `[${resolved.host}]` : resolved.host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    stats: () => app.snapshot(),
    configure: (patch) => app.configure(patch),
    reset: () => app.reset(),
    receiptPostCount: (appUserId, fetchToken) => app.receiptPostCount(appUserId, fetchToken),
    receiptPostCounts: () => app.receiptPostCounts(),
    peekSubscriber: (appUserId) => app.peekSubscriber(appUserId),
    options: () => app.currentOptions(),
    rateLimit: () => app.rateLimitState(),
    setRateLimitSchedule: (schedule) => app.setRateLimitSchedule(schedule),
    keys: () => app.keys(),
    revokeKey: (key) => app.setRevoked({ key }, true).length > 0,
    restoreKey: (key) => app.setRevoked({ key }, false).length > 0,
    deleteSubscriber: (appUserId) => app.deleteSubscriber(appUserId),
    removePurchase: (appUserId, productId) => app.removePurchase(appUserId, productId),
    updatePurchase: (appUserId, productId, patch) => app.updatePurchase(appUserId, productId, patch),
    transferSubscriber: (appUserId, originalAppUserId) => app.transferSubscriber(appUserId, originalAppUserId),
    transfers: () => app.transfers(),
    appleCredentials: () => app.appleCredentials(),
    appleApi: () => app.appleApiState(),
    appleTransactions: () => app.appleTransactions(),
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        app.shutdown();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      })),
  };
}
