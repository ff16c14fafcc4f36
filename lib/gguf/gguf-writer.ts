/**
 * A small, generic GGUF v3 (little-endian) writer.
 *
 * Supports the metadata value types a llama-style model needs (uint32,
 * float32, bool, string and arrays of string/float32/int32) and F32 tensors.
 * Tensor data is produced lazily, one tensor at a time, and streamed to disk,
 * so large files never sit in memory as a whole.
 */
import { open, rename, rm } from "node:fs/promises";

/** GGUF file magic ("GGUF" as bytes). */
export const GGUF_MAGIC = "GGUF";
/** GGUF format version written by {@link GgufWriter}. */
export const GGUF_VERSION = 3;
/** Alignment of the tensor data section and of each tensor inside it, in bytes. */
export const GGUF_ALIGNMENT = 32;

/** GGUF metadata value type ids (`gguf_metadata_value_type`). */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** GGML tensor type id for 32-bit floats. */
export const GGML_TYPE_F32 = 0;

/** A metadata value together with its GGUF type. */
export type GgufMetadataValue =
  | { type: "uint32"; value: number }
  | { type: "float32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: readonly string[] }
  | { type: "float32[]"; value: ArrayLike<number> }
  | { type: "int32[]"; value: ArrayLike<number> };

/** Produces a tensor's F32 data; called once, while the file is written. */
export type TensorDataProducer = () => Float32Array | Promise<Float32Array>;

/** An F32 tensor declared on a {@link GgufWriter}. */
export interface GgufTensorSpec {
  /** Tensor name, e.g. `blk.0.attn_q.weight`. */
  name: string;
  /** Dimensions as GGUF lists them: fastest-varying dimension first. */
  dims: readonly number[];
  /** Lazily produces the tensor's data (length must equal the product of dims). */
  data: TensorDataProducer;
}

const textEncoder = new TextEncoder();

/** Rounds `n` up to a multiple of `alignment`. */
export function alignUp(n: number, alignment: number = GGUF_ALIGNMENT): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Grows a list of small Buffers; used for the header. */
class ByteSink {
  readonly parts: Buffer[] = [];
  length = 0;

  push(buf: Buffer): void {
    this.parts.push(buf);
    this.length += buf.length;
  }

  u32(v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v >>> 0, 0);
    this.push(b);
  }

  f32(v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeFloatLE(v, 0);
    this.push(b);
  }

  u64(v: number): void {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(BigInt(v), 0);
    this.push(b);
  }

  bool(v: boolean): void {
    this.push(Buffer.from([v ? 1 : 0]));
  }

  str(s: string): void {
    const bytes = textEncoder.encode(s);
    this.u64(bytes.length);
    this.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

function writeValue(sink: ByteSink, v: GgufMetadataValue): void {
  switch (v.type) {
    case "uint32":
      sink.u32(GgufValueType.UINT32);
      sink.u32(v.value);
      return;
    case "float32":
      sink.u32(GgufValueType.FLOAT32);
      sink.f32(v.value);
      return;
    case "bool":
      sink.u32(GgufValueType.BOOL);
      sink.bool(v.value);
      return;
    case "string":
      sink.u32(GgufValueType.STRING);
      sink.str(v.value);
      return;
    case "string[]":
      sink.u32(GgufValueType.ARRAY);
      sink.u32(GgufValueType.STRING);
      sink.u64(v.value.length);
      for (const s of v.value) sink.str(s);
      return;
    case "float32[]": {
      sink.u32(GgufValueType.ARRAY);
      sink.u32(GgufValueType.FLOAT32);
      sink.u64(v.value.length);
      const b = Buffer.allocUnsafe(v.value.length * 4);
      for (let i = 0; i < v.value.length; i++) b.writeFloatLE(v.value[i], i * 4);
      sink.push(b);
      return;
    }
    case "int32[]": {
      sink.u32(GgufValueType.ARRAY);
      sink.u32(GgufValueType.INT32);
      sink.u64(v.value.length);
      const b = Buffer.allocUnsafe(v.value.length * 4);
      for (let i = 0; i < v.value.length; i++) b.writeInt32LE(v.value[i] | 0, i * 4);
      sink.push(b);
      return;
    }
  }
}

function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * Collects metadata and F32 tensors, then streams a GGUF v3 file to disk.
 *
 * Keys and tensors are written in insertion order, so the output is a pure
 * function of the calls made (and of the producers' data).
 */
export class GgufWriter {
  private readonly metadata = new Map<string, GgufMetadataValue>();
  private readonly tensors: GgufTensorSpec[] = [];

  /** Sets a metadata key (replacing any earlier value for that key). */
  set(key: string, value: GgufMetadataValue): this {
    this.metadata.set(key, value);
    return this;
  }

  /** Sets a uint32 metadata value. */
  addUint32(key: string, value: number): this {
    return this.set(key, { type: "uint32", value });
  }

  /** Sets a float32 metadata value. */
  addFloat32(key: string, value: number): this {
    return this.set(key, { type: "float32", value });
  }

  /** Sets a bool metadata value. */
  addBool(key: string, value: boolean): this {
    return this.set(key, { type: "bool", value });
  }

  /** Sets a UTF-8 string metadata value. */
  addString(key: string, value: string): this {
    return this.set(key, { type: "string", value });
  }

  /** Sets an array-of-strings metadata value. */
  addStringArray(key: string, value: readonly string[]): this {
    return this.set(key, { type: "string[]", value });
  }

  /** Sets an array-of-float32 metadata value. */
  addFloat32Array(key: string, value: ArrayLike<number>): this {
    return this.set(key, { type: "float32[]", value });
  }

  /** Sets an array-of-int32 metadata value. */
  addInt32Array(key: string, value: ArrayLike<number>): this {
    return this.set(key, { type: "int32[]", value });
  }

  /**
   * Declares an F32 tensor. `dims` lists the fastest-varying dimension first
   * (GGUF order); `data` is called once while the file is written.
   */
  addTensorF32(name: string, dims: readonly number[], data: TensorDataProducer): this {
    if (this.tensors.some((t) => t.name === name)) throw new Error(`duplicate tensor name: ${name}`);
    if (dims.length === 0 || dims.length > 4 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new Error(`invalid dims for tensor ${name}: [${dims.join(", ")}]`);
    }
    this.tensors.push({ name, dims: [...dims], data });
    return this;
  }

  /** Each tensor's offset in the data section (aligned). */
  private dataOffsets(): number[] {
    const offsets: number[] = [];
    let offset = 0;
    for (const t of this.tensors) {
      offset = alignUp(offset);
      offsets.push(offset);
      offset += elementCount(t.dims) * 4;
    }
    return offsets;
  }

  /**
   * Encodes everything before the tensor data: magic, version, counts, the
   * metadata KV pairs and the tensor infos, padded to {@link GGUF_ALIGNMENT}.
   */
  encodeHeader(): Buffer {
    const sink = new ByteSink();
    sink.push(Buffer.from(GGUF_MAGIC, "ascii"));
    sink.u32(GGUF_VERSION);
    sink.u64(this.tensors.length);
    sink.u64(this.metadata.size);
    for (const [key, value] of this.metadata) {
      sink.str(key);
      writeValue(sink, value);
    }
    const offsets = this.dataOffsets();
    this.tensors.forEach((t, i) => {
      sink.str(t.name);
      sink.u32(t.dims.length);
      for (const d of t.dims) sink.u64(d);
      sink.u32(GGML_TYPE_F32);
      sink.u64(offsets[i]);
    });
    const pad = alignUp(sink.length) - sink.length;
    if (pad > 0) sink.push(Buffer.alloc(pad));
    return sink.toBuffer();
  }

  /**
   * Writes the file: first to a temporary sibling, then renamed into place,
   * so readers never see a half-written model. Returns the size in bytes.
   */
  async write(path: string): Promise<number> {
    const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const fh = await open(tmp, "w");
    let written = 0;
    try {
      const header = this.encodeHeader();
      await fh.write(header, 0, header.length);
      written += header.length;
      let dataOffset = 0;
      for (const t of this.tensors) {
        const aligned = alignUp(dataOffset);
        if (aligned > dataOffset) {
          const pad = Buffer.alloc(aligned - dataOffset);
          await fh.write(pad, 0, pad.length);
          written += pad.length;
          dataOffset = aligned;
        }
        const data = await t.data();
        const expected = elementCount(t.dims);
        if (data.length !== expected) {
          throw new Error(`tensor ${t.name}: expected ${expected} elements, got ${data.length}`);
        }
        const buf = float32ToLeBuffer(data);
        await fh.write(buf, 0, buf.length);
        written += buf.length;
        dataOffset += buf.length;
      }
      const tail = alignUp(dataOffset) - dataOffset;
      if (tail > 0) {
        await fh.write(Buffer.alloc(tail), 0, tail);
        written += tail;
      }
      await fh.close();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
    await rename(tmp, path);
    return written;
  }
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function float32ToLeBuffer(data: Float32Array): Buffer {
  if (hostIsLittleEndian) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const b = Buffer.allocUnsafe(data.length * 4);
  for (let i = 0; i < data.length; i++) b.writeFloatLE(data[i], i * 4);
  return b;
}
