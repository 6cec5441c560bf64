// The /_sandbox/ routes of the App Store side: the App Store Server API's state and knobs (revoke the key, set
// the rate), its transactions and lookups, and the purchases moved between App User IDs. No auth, never counted
// in stats, like admin.ts's routes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppleApiState } from './appStoreServerApi.js';
import type { TransferRecord } from './applePurchases.js';
import type { AppleTransactionRecord } from './appleTransactions.js';
import { CODES } from './codes.js';
import { readBody, writeResponse } from './http.js';
import { SandboxOptionsError } from './options.js';
import { isPlainObject } from './validate.js';

/** What these routes need of the app (SandboxApp implements it). */
export interface AppleAdminTarget {
  appleApiState(): AppleApiState;
  appleTransactions(): AppleTransactionRecord[];
  appleLookups(): Record<string, number>;
  transfers(): TransferRecord[];
  configure(patch: unknown): void;
}

type Answer = { status: number; body: unknown };

export function isAppleAdminPath(path: string): boolean {
  return path === '/_sandbox/transfers' || path === '/_sandbox/apple' || path.startsWith('/_sandbox/apple/');
}

export class AppleAdminRoutes {
  constructor(private readonly app: AppleAdminTarget) {}

  async handle(req: IncomingMessage, res: ServerResponse, method: string, url: URL): Promise<void> {
    const parsed = await readBody(req);
    writeResponse(res, this.answer(method, url.pathname, parsed.ok ? parsed.value : undefined, !parsed.ok && !parsed.empty), {});
  }

  private answer(method: string, path: string, body: unknown, malformed: boolean): Answer {
    const ok = (value: unknown): Answer => ({ status: 200, body: value });
    if (method === 'GET' && path === '/_sandbox/transfers') {
      const transfers = this.app.transfers();
      return ok({ count: transfers.length, transfers });
    }
    if (method === 'GET' && path === '/_sandbox/apple') return ok(this.app.appleApiState());
    if (method === 'GET' && path === '/_sandbox/apple/transactions') return ok({ transactions: this.app.appleTransactions() });
    if (method === 'GET' && path === '/_sandbox/apple/lookups') return ok({ lookups: this.app.appleLookups() });
    const key = /^\/_sandbox\/apple\/key\/(revoke|restore)$/.exec(path);
    if (method === 'POST' && key) return this.configuring({ appleKeyRevoked: key[1] === 'revoke' });
    if (method === 'POST' && path === '/_sandbox/apple/rate') {
      if (malformed || !isPlainObject(body) || body.perSecond === undefined) return bad('send {"perSecond": <lookups per second per app, 0 = no limit>}.');
      return this.configuring({ appleRatePerSecond: body.perSecond });
    }
    return { status: 404, body: { code: CODES.notFound, message: `Not found: ${method} ${path}.` } };
  }

  private configuring(patch: Record<string, unknown>): Answer {
    try {
      this.app.configure(patch);
    } catch (error) {
      if (error instanceof SandboxOptionsError) return bad(error.message, { issues: error.issues });
      throw error;
    }
    return { status: 200, body: this.app.appleApiState() };
  }
}

function bad(message: string, extra?: Record<string, unknown>): Answer {
  return { status: 400, body: { code: CODES.badRequest, message, ...extra } };
}
