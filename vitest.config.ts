// Three tiers. `unit` (npm run test:unit): tests that need no Redis, no network listener and no browser, so they
// run in seconds anywhere. `system` (npm run test:system): the slow ones that kill processes or start external
// binaries: the chaos suite, the Redis Cluster files (each starts its own 3+3 cluster), Redis at maxmemory (a
// private redis-server), the ingest killed with SIGKILL, the real terminal (tmux) and report.html in Chromium.
// `integration` (npm run test:integration): everything else, against the one test Redis its global setup finds.
// A test file is integration unless it is listed here, so a new test can never leave the Redis tier by accident;
// a unit file that reaches for Redis fails at once (inject('redisUrl') has nothing to give). `npm test` runs the
// three in turn and prints each one's duration (scripts/test-tiers.mjs).
import { configDefaults, defineConfig } from 'vitest/config';

const UNIT_TESTS = [
  'test/activeExpiry.test.ts',
  'test/apiKeys.test.ts',
  'test/appleCertificate.test.ts',
  'test/appleReceipts.test.ts',
  'test/appleServerApi.test.ts',
  'test/classify.test.ts',
  'test/clusterConnection.test.ts',
  'test/config.test.ts',
  'test/connectionLoss.test.ts',
  'test/formulaCells.test.ts',
  'test/importGraph.test.ts',
  'test/keyFile.test.ts',
  'test/maxmemoryPressure.test.ts',
  'test/outcomeCodec.test.ts',
  'test/property.test.ts',
  'test/rateDiscovery.test.ts',
  'test/readCsv.test.ts',
  'test/receiptAttributes.test.ts',
  'test/receiptSurvey.test.ts',
  'test/surveyThread.test.ts',
  'test/renewals.test.ts',
  'test/reportHtmlRender.test.ts',
  'test/rowRecord.test.ts',
  'test/template.test.ts',
  'test/tokenFacts.test.ts',
  'test/validateRow.test.ts',
  'test/windowEdge.test.ts',
];

const SYSTEM_TESTS = [
  'test/chaos.test.ts',
  'test/cluster.test.ts',
  'test/clusterChaos.test.ts',
  'test/clusterInventory.test.ts',
  'test/clusterRun.test.ts',
  'test/ledgerCluster.test.ts',
  'test/maxmemory.test.ts',
  'test/reportHtml.test.ts',
  'test/resume.test.ts',
  'test/soak.test.ts',
  'test/terminal.test.ts',
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
          exclude: [...configDefaults.exclude, ...UNIT_TESTS, ...SYSTEM_TESTS],
          globalSetup: ['test/support/globalSetup.ts'],
        },
      },
      {
        extends: true,
        test: { name: 'system', include: SYSTEM_TESTS, globalSetup: ['test/support/globalSetup.ts'] },
      },
    ],
  },
});
