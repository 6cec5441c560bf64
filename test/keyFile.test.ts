// A key file that cannot be read is named in the error, and nothing else is read into the message.
import { describe, expect, it } from 'vitest';
import { loadConfig, ConfigError } from '../src/config.js';

describe('secrets', () => {
  it('says which key file it could not read, without reading anything else into the message', () => {
    expect(() => loadConfig({ env: { REVENUECAT_API_KEY_FILE: '/nonexistent/key' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { REVENUECAT_API_KEY_FILE: '/nonexistent/key' } })).toThrow(/REVENUECAT_API_KEY_FILE=\/nonexistent\/key: cannot read the key file \(ENOENT\)/);
  });
});
