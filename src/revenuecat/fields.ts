// The POST /v1/receipts contract as data: which fields exist, their types, and which store accepts which.
// Source: RevenueCat's POST /receipts parameter reference (per store: required, optional, not compatible) and
// its REST API v1 reference.
// Both the ingest validator and the sandbox read this table, so the rules live in one place.

/** Every value RevenueCat accepts in the X-Platform header. */
export const PLATFORMS = ['ios', 'android', 'amazon', 'macos', 'uikitformac', 'stripe', 'roku', 'paddle'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** The columns of seed 003's table: iOS/macOS, Google, Amazon, Stripe. Roku and Paddle are not in it. */
export type Store = 'apple' | 'google' | 'amazon' | 'stripe' | 'other';

function storeOf(platform: Platform): Store {
  switch (platform) {
    case 'ios':
    case 'macos':
    case 'uikitformac':
      return 'apple';
    case 'android':
      return 'google';
    case 'amazon':
      return 'amazon';
    case 'stripe':
      return 'stripe';
    default:
      return 'other';
  }
}

/** Names people use in their exports for a platform, mapped to the X-Platform value. */
const PLATFORM_ALIASES: Record<string, Platform> = {
  ios: 'ios',
  apple: 'ios',
  app_store: 'ios',
  appstore: 'ios',
  itunes: 'ios',
  android: 'android',
  google: 'android',
  play_store: 'android',
  playstore: 'android',
  google_play: 'android',
  amazon: 'amazon',
  amazon_appstore: 'amazon',
  macos: 'macos',
  mac_app_store: 'macos',
  uikitformac: 'uikitformac',
  stripe: 'stripe',
  roku: 'roku',
  paddle: 'paddle',
};

export function parsePlatform(value: string): Platform | undefined {
  return PLATFORM_ALIASES[value.trim().toLowerCase()];
}

export type FieldType = 'string' | 'number' | 'boolean' | 'payment_mode' | 'currency' | 'duration' | 'country';
export type Support = 'required' | 'optional' | 'no';

interface FieldSpec {
  type: FieldType;
  /** Support per store. `other` (Roku, Paddle) is not documented: we accept only what every store accepts. */
  support: Record<Store, Support>;
}

const ALL_OPTIONAL = { apple: 'optional', google: 'optional', amazon: 'optional', stripe: 'optional', other: 'optional' } as const;
const APPLE_ONLY = { apple: 'optional', google: 'no', amazon: 'no', stripe: 'no', other: 'no' } as const;
const NOT_STRIPE = { apple: 'optional', google: 'optional', amazon: 'optional', stripe: 'no', other: 'no' } as const;

/** Body fields of POST /v1/receipts that a row may carry (attributes are handled apart). */
export const RECEIPT_FIELDS = {
  app_user_id: { type: 'string', support: { apple: 'required', google: 'required', amazon: 'required', stripe: 'required', other: 'required' } },
  fetch_token: { type: 'string', support: { apple: 'required', google: 'required', amazon: 'required', stripe: 'required', other: 'required' } },
  product_id: { type: 'string', support: { apple: 'optional', google: 'required', amazon: 'optional', stripe: 'no', other: 'no' } },
  price: { type: 'number', support: NOT_STRIPE },
  currency: { type: 'currency', support: NOT_STRIPE },
  is_restore: { type: 'boolean', support: ALL_OPTIONAL },
  payment_mode: { type: 'payment_mode', support: APPLE_ONLY },
  subscription_group_id: { type: 'string', support: APPLE_ONLY },
  store_user_id: { type: 'string', support: { apple: 'no', google: 'no', amazon: 'required', stripe: 'no', other: 'no' } },
  presented_offering_identifier: { type: 'string', support: ALL_OPTIONAL },
  observer_mode: { type: 'boolean', support: { apple: 'optional', google: 'optional', amazon: 'no', stripe: 'optional', other: 'no' } },
  introductory_price: { type: 'number', support: APPLE_ONLY },
  normal_duration: { type: 'duration', support: APPLE_ONLY },
  intro_duration: { type: 'duration', support: APPLE_ONLY },
  trial_duration: { type: 'duration', support: APPLE_ONLY },
  store_country: { type: 'country', support: APPLE_ONLY },
  ip_address: { type: 'string', support: APPLE_ONLY },
} as const satisfies Record<string, FieldSpec>;

export type ReceiptField = keyof typeof RECEIPT_FIELDS;
export const RECEIPT_FIELD_NAMES = Object.keys(RECEIPT_FIELDS) as ReceiptField[];

export function isReceiptField(name: string): name is ReceiptField {
  return Object.hasOwn(RECEIPT_FIELDS, name);
}

export function fieldSupport(field: ReceiptField, platform: Platform): Support {
  return RECEIPT_FIELDS[field].support[storeOf(platform)];
}

export interface SubscriberAttribute {
  value: string;
  updated_at_ms: number;
}

/** The JSON body a worker sends, less the two historical-import flags the client always adds. */
export interface ReceiptBody {
  app_user_id: string;
  fetch_token: string;
  product_id?: string;
  price?: number;
  currency?: string;
  is_restore?: boolean;
  payment_mode?: 0 | 1 | 2;
  subscription_group_id?: string;
  store_user_id?: string;
  presented_offering_identifier?: string;
  observer_mode?: boolean;
  introductory_price?: number;
  normal_duration?: string;
  intro_duration?: string;
  trial_duration?: string;
  store_country?: string;
  ip_address?: string;
  attributes?: Record<string, SubscriberAttribute>;
}

/** ISO 4217 active codes. Kept here rather than pulled from Intl so that validation is the same on every Node build. */
export const ISO_4217 = new Set(
  (
    'AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF ' +
    'CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD ' +
    'HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL ' +
    'MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD ' +
    'RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD ' +
    'USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL'
  ).split(' '),
);

/** App User ID rules (RevenueCat's App User ID documentation and the backend's blocklist): RevenueCat refuses these values outright (compared case-insensitively). */
export const APP_USER_ID_BLOCKLIST = new Set(['null', 'none', 'nil', 'anonymous', 'guest', '-1', '0', '', '[object object]', 'undefined', 'nan']);
export const APP_USER_ID_MAX_LENGTH = 100;

/** Why an App User ID is refused, or undefined when it is acceptable. */
export function appUserIdProblem(id: string): string | undefined {
  if (id.trim() === '') return 'app_user_id is empty';
  if (id.length > APP_USER_ID_MAX_LENGTH) return `app_user_id is ${id.length} characters long; RevenueCat allows at most ${APP_USER_ID_MAX_LENGTH}`;
  if (id.includes('/')) return 'app_user_id contains "/", which RevenueCat refuses';
  if (APP_USER_ID_BLOCKLIST.has(id.trim().toLowerCase())) return `app_user_id "${id}" is a blocklisted value RevenueCat refuses`;
  if (id !== id.trim()) return 'app_user_id has leading or trailing whitespace; App User IDs are compared exactly';
  return undefined;
}

const DURATION = /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/;
export function isIsoDuration(value: string): boolean {
  return DURATION.test(value);
}
