// Little binary writer and reader for the ledger's compact records: unsigned LEB128 varints (exact up to 2^53,
// so without 32-bit bitwise operators), zigzag for signed values, and length-prefixed strings.

export class ByteWriter {
  private readonly chunks: number[] = [];

  varint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint needs a non-negative safe integer, got ${value}`);
    let v = value;
    while (v >= 128) {
      this.chunks.push((v % 128) + 128);
      v = Math.floor(v / 128);
    }
    this.chunks.push(v);
    return this;
  }

  signed(value: number): this {
    return this.varint(value < 0 ? -2 * value - 1 : 2 * value);
  }

  byte(value: number): this {
    this.chunks.push(value & 0xff);
    return this;
  }

  bytes(buf: Uint8Array): this {
    for (const b of buf) this.chunks.push(b);
    return this;
  }

  /** varint byte length, then the UTF-8 bytes */
  string(text: string): this {
    const buf = Buffer.from(text, 'utf8');
    return this.varint(buf.length).bytes(buf);
  }

  get length(): number {
    return this.chunks.length;
  }

  toBuffer(): Buffer {
    return Buffer.from(this.chunks);
  }
}

export class ByteReader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    start = 0,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  byte(): number {
    if (this.pos >= this.buf.length) throw new RangeError('record ends too early');
    return this.buf[this.pos++] as number;
  }

  varint(): number {
    let value = 0;
    let mul = 1;
    for (;;) {
      const b = this.byte();
      value += (b % 128) * mul;
      if (b < 128) return value;
      mul *= 128;
    }
  }

  signed(): number {
    const z = this.varint();
    return z % 2 === 1 ? -(z + 1) / 2 : z / 2;
  }

  bytes(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new RangeError('record ends too early');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(): string {
    return this.bytes(this.varint()).toString('utf8');
  }

  rest(): Buffer {
    return this.bytes(this.buf.length - this.pos);
  }
}
