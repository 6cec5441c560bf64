// Two tiers. `unit` (npm run test:unit): tests that need no Redis, no network listener and no browser, so they
// run in seconds anywhere. `integration` (npm run test:integration): everything else; its global setup finds a
// Redis first. A test file is integration unless it is listed here, so a new test can never leave the Redis
// tier by accident; a unit file that reaches for Redis fails at once (inject('redisUrl') has nothing to give).
import { configDefaults, defineConfig } from 'vitest/config';

const UNIT_TESTS = [
  'test/apiKeys.test.ts',
  'test/appleReceipts.test.ts',
  'test/classify.test.ts',
  'test/clusterConnection.test.ts',
  'test/config.test.ts',
  'test/formulaCells.test.ts',
  'test/importGraph.test.ts',
  'test/keyFile.test.ts',
  'test/outcomeCodec.test.ts',
  'test/property.test.ts',
  'test/rateDiscovery.test.ts',
  'test/readCsv.test.ts',
  'test/receiptSurvey.test.ts',
  'test/reportHtmlRender.test.ts',
  'test/rowRecord.test.ts',
  'test/template.test.ts',
  'test/validateRow.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: UNIT_TESTS },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...UNIT_TESTS],
          globalSetup: ['test/support/globalSetup.ts'],
        },
      },
    ],
  },
});
