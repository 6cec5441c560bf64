// S3 URLs as sources: the parts that need no AWS SDK, so that a run over local files never loads it.
import { ConfigError } from '../config.js';

export interface S3Location {
  bucket: string;
  /** Key prefix, as typed after the bucket (may be empty: the whole bucket). */
  prefix: string;
}

export function isS3Url(source: string): boolean {
  return /^s3:\/\//i.test(source);
}

/** Splits `s3://bucket/prefix`; a ConfigError says what to fix when there is no usable bucket. */
export function parseS3Url(url: string): S3Location {
  if (!isS3Url(url)) throw new ConfigError(`not an S3 URL: ${url} (write S3 sources as s3://bucket/prefix)`);
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const prefix = slash === -1 ? '' : rest.slice(slash + 1);
  if (bucket === '') throw new ConfigError(`S3 source ${url} names no bucket: write it as s3://bucket/prefix`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(bucket)) {
    throw new ConfigError(`S3 source ${url}: "${bucket}" is not a valid bucket name (letters, digits, ".", "-"): write it as s3://bucket/prefix`);
  }
  return { bucket, prefix };
}

export function s3ObjectName(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** Keys read as CSV: ending in .csv or .csv.gz, case-insensitive. */
export function isCsvKey(key: string): boolean {
  return /\.csv(\.gz)?$/i.test(key);
}
