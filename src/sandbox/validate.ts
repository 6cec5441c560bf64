// POST /v1/receipts validation in RevenueCat's order and with its codes. The rules come from the sandbox's own
// reading of the documents (./contract/), not from the pipeline's: a misreading on either side shows up as a
// disagreement between them instead of being shared by construction.
import { appUserIdProblem } from './contract/appUserId.js';
import { ISO_4217_CODES } from './contract/currencies.js';
import { PLATFORMS, isPlatform, storeColumn, type Platform } from './contract/platforms.js';
import { RECEIPT_FIELD_NAMES, fieldType, isReceiptFieldName, requirement, type ReceiptFieldName } from './contract/receiptFields.js';
import type { SubscriberAttribute } from './contract/subscriber.js';
import { CODES } from './codes.js';
import { apiError, badRequest, type ApiResponse, type AttributeError } from './responses.js';

export interface ValidReceipt {
  platform: Platform;
  appUserId: string;
  fetchToken: string;
  productId: string | undefined;
  attributes: Record<string, SubscriberAttribute>;
  /** True unless the body sent should_update_last_seen_fields: false. */
  updateLastSeen: boolean;
}

export type Validation = { ok: true; receipt: ValidReceipt } | { ok: false; response: ApiResponse };

/** The request body after reading: parsed JSON, or why it could not be. */
export type ParsedBody = { ok: true; value: unknown } | { ok: false; reason: string };

/** ISO 8601 durations as the parameter reference asks for them (P1M, P1W, PT12H...). */
const ISO_DURATION = /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `undefined` and `null` both mean "not sent": JSON clients commonly write null for an absent column. */
function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

export function checkPlatformHeader(header: string | undefined): { ok: true; platform: Platform } | { ok: false; response: ApiResponse } {
  if (header === undefined || header === '') {
    return { ok: false, response: apiError(400, CODES.invalidPlatform, 'Missing X-Platform header.') };
  }
  if (!isPlatform(header)) {
    return { ok: false, response: apiError(400, CODES.invalidPlatform, `Invalid platform "${header}". Expected one of ${PLATFORMS.join(', ')}.`) };
  }
  return { ok: true, platform: header };
}

/** Empty (or blank) → 7220, otherwise any appUserIdProblem → 7256. Shared with GET /v1/subscribers/{id} and v2. */
export function checkAppUserId(id: string): ApiResponse | undefined {
  if (id.trim() === '') return apiError(400, CODES.emptyAppUserId, 'app_user_id is empty.');
  const problem = appUserIdProblem(id);
  return problem === undefined ? undefined : apiError(400, CODES.invalidAppUserId, `Invalid app_user_id: ${problem}.`);
}

export function validateReceipt(platformHeader: string | undefined, parsed: ParsedBody): Validation {
  const fail = (response: ApiResponse): Validation => ({ ok: false, response });

  const platformCheck = checkPlatformHeader(platformHeader);
  if (!platformCheck.ok) return fail(platformCheck.response);
  const platform = platformCheck.platform;
  const column = storeColumn(platform);

  if (!parsed.ok) return fail(badRequest(`Request body is not valid JSON: ${parsed.reason}.`));
  const body = parsed.value;
  if (!isPlainObject(body)) return fail(badRequest('Request body must be a JSON object.'));

  const appUserId = body.app_user_id;
  if (!present(appUserId) || appUserId === '') return fail(apiError(400, CODES.emptyAppUserId, 'app_user_id is empty.'));
  if (typeof appUserId !== 'string') return fail(badRequest('app_user_id must be a string.'));
  const idProblem = checkAppUserId(appUserId);
  if (idProblem) return fail(idProblem);

  const fetchToken = body.fetch_token;
  if (typeof fetchToken !== 'string' || fetchToken === '') return fail(badRequest('fetch_token is required and must be a non-empty string.'));

  if (column === 'google' && (!present(body.product_id) || body.product_id === '')) {
    return fail(apiError(400, CODES.googleProductIdMissing, 'product_id is required for Google Play receipts.'));
  }

  if (present(body.price) !== present(body.currency)) {
    return fail(badRequest(present(body.price) ? 'price requires currency.' : 'currency requires price.'));
  }
  if (present(body.currency) && (typeof body.currency !== 'string' || !ISO_4217_CODES.has(body.currency))) {
    return fail(badRequest(`currency ${JSON.stringify(body.currency)} is not an ISO 4217 code.`));
  }
  for (const field of ['price', 'introductory_price'] as const) {
    const value = body[field];
    if (present(value) && !(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
      return fail(badRequest(`${field} must be a non-negative number.`));
    }
  }

  if (present(body.payment_mode) && !(body.payment_mode === 0 || body.payment_mode === 1 || body.payment_mode === 2)) {
    return fail(apiError(400, CODES.invalidPaymentMode, 'payment_mode must be 0 (pay as you go), 1 (pay up front) or 2 (free trial).'));
  }

  for (const [name, value] of Object.entries(body)) {
    if (!isReceiptFieldName(name) || !present(value)) continue;
    if (requirement(name, platform) === 'not_compatible') {
      return fail(badRequest(`${name} is not compatible with X-Platform ${platform}.`, { param: name }));
    }
    const typeProblem = checkFieldType(name, value);
    if (typeProblem) return fail(badRequest(typeProblem, { param: name }));
  }

  const attributes = checkAttributes(body.attributes);
  if (!attributes.ok) return fail(attributes.response);

  // product_id (Google), app_user_id and fetch_token were checked above with their own codes; what is left
  // is store_user_id for Amazon.
  for (const name of RECEIPT_FIELD_NAMES) {
    if (requirement(name, platform) === 'required' && (!present(body[name]) || body[name] === '')) {
      return fail(badRequest(`${name} is required for X-Platform ${platform}.`, { param: name }));
    }
  }

  if (column === 'stripe' && !(fetchToken.startsWith('sub_') || fetchToken.startsWith('cs_'))) {
    return fail(apiError(400, CODES.invalidReceipt, 'Stripe fetch_token must be a subscription id (sub_…) or a Checkout Session id (cs_…).'));
  }

  return {
    ok: true,
    receipt: {
      platform,
      appUserId,
      fetchToken,
      productId: typeof body.product_id === 'string' && body.product_id !== '' ? body.product_id : undefined,
      attributes: attributes.value,
      updateLastSeen: body.should_update_last_seen_fields !== false,
    },
  };
}

function checkFieldType(name: ReceiptFieldName, value: unknown): string | undefined {
  switch (fieldType(name)) {
    case 'string':
      return typeof value === 'string' ? undefined : `${name} must be a string.`;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `${name} must be a boolean.`;
    case 'duration':
      return typeof value === 'string' && ISO_DURATION.test(value) ? undefined : `${name} must be an ISO 8601 duration such as P1M.`;
    case 'country':
      return typeof value === 'string' && /^[A-Z]{2}$/.test(value) ? undefined : `${name} must be an ISO 3166-1 alpha-2 country code.`;
    // float, currency and payment_mode were checked earlier with their own codes.
    default:
      return undefined;
  }
}

function checkAttributes(value: unknown): { ok: true; value: Record<string, SubscriberAttribute> } | { ok: false; response: ApiResponse } {
  if (!present(value)) return { ok: true, value: {} };
  if (!isPlainObject(value)) return { ok: false, response: badRequest('attributes must be an object keyed by attribute name.') };
  const errors: AttributeError[] = [];
  const out: Record<string, SubscriberAttribute> = {};
  for (const [key, attribute] of Object.entries(value)) {
    if (key === '') {
      errors.push({ key_name: key, message: 'Attribute names cannot be empty.' });
    } else if (!isPlainObject(attribute)) {
      errors.push({ key_name: key, message: 'Attribute must be an object {value, updated_at_ms}.' });
    } else if (typeof attribute.value !== 'string') {
      errors.push({ key_name: key, message: 'Attribute value must be a string.' });
    } else if (typeof attribute.updated_at_ms !== 'number' || !Number.isFinite(attribute.updated_at_ms)) {
      errors.push({ key_name: key, message: 'Attribute updated_at_ms must be a number (epoch milliseconds).' });
    } else {
      out[key] = { value: attribute.value, updated_at_ms: attribute.updated_at_ms };
    }
  }
  if (errors.length > 0) {
    return { ok: false, response: badRequest('Some subscriber attributes could not be saved.', { attribute_errors: errors }) };
  }
  return { ok: true, value: out };
}
