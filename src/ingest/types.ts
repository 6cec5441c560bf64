// The ingest layer's public types in one place, for the queue, workers and reports.
export type { CsvItem, CsvProblem, CsvRecord } from './readCsv.js';
export type { ColumnOptions, ColumnPlan } from './columns.js';
export type { RowResult } from './validateRow.js';
export type { Platform, ReceiptBody, ReceiptField } from '../revenuecat/fields.js';
