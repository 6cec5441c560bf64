// The X-Platform header, written from RevenueCat's documents rather than shared with the pipeline: the values
// are those of the v1 OpenAPI spec ("ios, android, amazon, macos, uikitformac, stripe, roku, paddle"); the store
// columns are those of the POST /receipts parameter reference; the `store` names a Subscriber shows are those of
// the Subscriber object reference.

export const PLATFORMS = ['ios', 'android', 'amazon', 'macos', 'uikitformac', 'stripe', 'roku', 'paddle'] as const;
export type Platform = (typeof PLATFORMS)[number];

const PLATFORM_SET: ReadonlySet<string> = new Set(PLATFORMS);

export function isPlatform(value: string): value is Platform {
  return PLATFORM_SET.has(value);
}

/**
 * The parameter reference's four columns: "iOS/macOS", "Google", "Amazon", "Stripe". Roku and Paddle have no column (the
 * documents say nothing of their fields): `undocumented`.
 */
export type StoreColumn = 'apple' | 'google' | 'amazon' | 'stripe' | 'undocumented';

const COLUMN: Record<Platform, StoreColumn> = {
  ios: 'apple',
  macos: 'apple',
  // Mac Catalyst apps buy through the App Store too: the iOS/macOS column.
  uikitformac: 'apple',
  android: 'google',
  amazon: 'amazon',
  stripe: 'stripe',
  roku: 'undocumented',
  paddle: 'undocumented',
};

export function storeColumn(platform: Platform): StoreColumn {
  return COLUMN[platform];
}

/**
 * The Subscriber's `store` per platform. The Subscriber reference names app_store, mac_app_store, play_store, amazon, stripe
 * (and promotional); Roku and Paddle are not in its list, so the sandbox uses their platform names.
 */
export const SUBSCRIBER_STORE: Record<Platform, string> = {
  ios: 'app_store',
  macos: 'mac_app_store',
  uikitformac: 'mac_app_store',
  android: 'play_store',
  amazon: 'amazon',
  stripe: 'stripe',
  roku: 'roku',
  paddle: 'paddle',
};
