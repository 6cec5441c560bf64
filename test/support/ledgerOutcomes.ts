// A finished row's outcome for ledger tests that write answers directly (no worker): a success with a
// subscriber that confirms the product, or a permanent 7103 failure with its input and body, as a worker builds it
// (the ledger keeps neither: failed.csv and retry read the row again from its source).
import type { AdmitRow } from '../../src/ledger/runLedger.js';
import type { Outcome } from '../../src/types.js';

export function outcomeFor(r: AdmitRow, fp: string, status: Outcome['status']): Outcome {
  const base = { src: r.src, line: r.line, fp, platform: r.platform, app_user_id: r.body.app_user_id, product_id: 'gold', attempts: 1, finished_at: new Date().toISOString() };
  return status === 'succeeded'
    ? {
        ...base,
        status,
        http_status: 200,
        subscriber: { original_app_user_id: r.body.app_user_id, product_found: 'subscription', active_entitlements: [], product: { expires_date: null } },
      }
    : {
        ...base,
        status,
        http_status: 400,
        code: 7103,
        reason: 'rc_7103',
        message: 'invalid',
        token: '****',
        queued_at: base.finished_at,
        input: { user: r.body.app_user_id, token: r.body.fetch_token },
        body: r.body,
      };
}
