// Google Play stops validating a purchase token about 60 days after it expired: the store answers 410
// purchaseTokenNoLongerValid, and RevenueCat refuses the receipt (410, or 7103 invalid receipt). For a row whose
// export said when the token expired (ingest/tokenExpiry.ts), that refusal gets a reason of its own, so that the
// report says why, and that no retry will help, instead of a bare rc_7103.
import { GOOGLE_CUTOFF_DAYS, GOOGLE_CUTOFF_MS } from '../ingest/tokenExpiry.js';
import type { Classification } from '../revenuecat/classify.js';
import type { ReceiptJobData } from '../types.js';

export const GOOGLE_TOKEN_EXPIRED = 'google_token_expired';

/** What the refusal of a token past its cut-off becomes; undefined for any other answer or row. */
export function googleTokenExpired(
  data: Pick<ReceiptJobData, 'platform' | 'token_expiry'>,
  verdict: Extract<Classification, { kind: 'permanent' }>,
  sentAt: number,
): { reason: typeof GOOGLE_TOKEN_EXPIRED; message: string } | undefined {
  const expiry = data.token_expiry;
  if (data.platform !== 'android' || expiry === undefined) return undefined;
  if (verdict.status !== 410 && verdict.code !== 7103) return undefined;
  // Flagged at ingest, or gone past the cut-off while it waited in the queue.
  if (!expiry.past_cutoff && sentAt - expiry.expires_at_ms <= GOOGLE_CUTOFF_MS) return undefined;
  const date = new Date(expiry.expires_at_ms).toISOString().slice(0, 10);
  return {
    reason: GOOGLE_TOKEN_EXPIRED,
    message: `Google Play no longer validates this purchase token: it expired on ${date}, more than ~${GOOGLE_CUTOFF_DAYS} days before it was sent (the store answers 410 purchaseTokenNoLongerValid), so RevenueCat cannot import it; retrying will not help.`,
  };
}
