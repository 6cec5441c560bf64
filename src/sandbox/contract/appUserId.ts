// App User ID rules as RevenueCat documents them: case-sensitive, at most 100 characters, no `/`, and a
// blocklist "such as null, none, nil, anonymous, guest, -1, 0, the empty string, [object Object]". The sandbox
// refuses exactly the listed values (letter case aside: `NULL` is no more an id than `null`) and nothing the
// documents do not name — no trimming, no whitespace rule.

export const APP_USER_ID_MAX_LENGTH = 100;

const BLOCKLIST: ReadonlySet<string> = new Set(['null', 'none', 'nil', 'anonymous', 'guest', '-1', '0', '', '[object object]']);

/** Why RevenueCat would refuse the id, or undefined when it is acceptable. The empty id is the caller's (7220). */
export function appUserIdProblem(id: string): string | undefined {
  if (id.length > APP_USER_ID_MAX_LENGTH) return `app_user_id is ${id.length} characters long; at most ${APP_USER_ID_MAX_LENGTH} are allowed`;
  if (id.includes('/')) return 'app_user_id contains "/"';
  if (BLOCKLIST.has(id.toLowerCase())) return `app_user_id "${id}" is a blocklisted value`;
  return undefined;
}
