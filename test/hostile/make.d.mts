// Types of make.mjs, for the tests that call it.
export declare const HUGE_FIELD_BYTES: number;
export declare const MANY_GOOD_ROWS: number;
export declare const TRUNCATED_GZIP_ROWS: number;
/** Writes every generated hostile file into dir; returns the names written. */
export declare function generate(dir: string): string[];
