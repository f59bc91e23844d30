// EIP-712 typed-data hashing and secp256k1 signing, shared by the probe reports (probes/report.ts) and the
// settlement voucher (settlement.ts): one ABI word encoder, one digest, one signature format.
//
//   digest = keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(type, words))
//   hashStruct = keccak256(keccak256(utf8(type)) ‖ word₁ ‖ … ‖ wordₙ)
//
// Each field is one 32-byte ABI word: unsigned integers and addresses left-padded, `string`s as the keccak-256 of
// their UTF-8 bytes, `bytes32` as is. Signatures are r ‖ s ‖ v (v = 27 or 28, low s), 0x-hex, what ecrecover takes.

import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `0x` and the lowercase hex of `bytes`. */
export const hex0x = (bytes: Uint8Array): string => `0x${toHex(bytes)}`;

export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const text = hex.startsWith("0x") ? hex.slice(2) : hex;
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new Error(`not hex: ${hex}`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A `uint<bits>` as one ABI word; throws unless `value` is an integer in range. */
export function uintWord(value: bigint | number, bits = 256): Uint8Array {
  if (typeof value === "number" && !Number.isSafeInteger(value)) throw new RangeError(`${value} is not a uint${bits}`);
  let n = BigInt(value);
  if (n < 0n || n >= 1n << BigInt(bits)) throw new RangeError(`${value} is not a uint${bits}`);
  const w = new Uint8Array(32);
  for (let i = 31; n > 0n; i--, n >>= 8n) w[i] = Number(n & 0xffn);
  return w;
}

/** An `address` (`0x` and 40 hex digits, any case) as one ABI word. */
export function addressWord(address: string): Uint8Array {
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new Error(`not an address: ${address}`);
  const w = new Uint8Array(32);
  w.set(fromHex(address), 12);
  return w;
}

/** A `bytes32` (`0x` and 64 hex digits) as one ABI word. */
export function bytes32Word(value: string): Uint8Array {
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw new Error(`not a bytes32: ${value}`);
  return fromHex(value);
}

/** A `string` as EIP-712 encodes it: the keccak-256 of its UTF-8 bytes. */
export const stringWord = (text: string): Uint8Array => keccak_256(utf8(text));

/** keccak-256 of an EIP-712 type string, e.g. `"Mail(address to,string contents)"`. */
export const typeHash = (type: string): Uint8Array => keccak_256(utf8(type));

/** EIP-712 hashStruct: `words` are the fields' ABI words, in the order of `type`. */
export function hashStruct(type: string, words: readonly Uint8Array[]): Uint8Array {
  return keccak_256(concat(typeHash(type), ...words));
}

/** The EIP-712 domain fields this project uses; absent ones are left out of the domain type, as EIP-712 says. */
export interface Domain {
  name: string;
  version: string;
  chainId?: bigint;
  verifyingContract?: string;
}

/** The `EIP712Domain(...)` type string of `domain`. */
export function domainType(domain: Domain): string {
  const fields = ["string name", "string version"];
  if (domain.chainId !== undefined) fields.push("uint256 chainId");
  if (domain.verifyingContract !== undefined) fields.push("address verifyingContract");
  return `EIP712Domain(${fields.join(",")})`;
}

export function domainSeparator(domain: Domain): Uint8Array {
  const words = [stringWord(domain.name), stringWord(domain.version)];
  if (domain.chainId !== undefined) words.push(uintWord(domain.chainId));
  if (domain.verifyingContract !== undefined) words.push(addressWord(domain.verifyingContract));
  return hashStruct(domainType(domain), words);
}

/** What gets signed: keccak256(0x19 0x01 ‖ domainSeparator ‖ structHash). */
export function typedDigest(domain: Domain, structHash: Uint8Array): Uint8Array {
  return keccak_256(concat(Uint8Array.of(0x19, 0x01), domainSeparator(domain), structHash));
}

/** The Ethereum address (0x, lowercase) of a public key in any SEC 1 form. */
export function addressOf(publicKey: Uint8Array): string {
  const uncompressed = secp256k1.Point.fromBytes(publicKey).toBytes(false);
  return hex0x(keccak_256(uncompressed.subarray(1)).subarray(12));
}

/** The address that signed `digest` (what ecrecover gives); throws on a malformed signature. */
export function recoverAddress(digest: Uint8Array, signature: string): string {
  const bytes = fromHex(signature);
  const v = bytes[64];
  if (bytes.length !== 65 || (v !== 27 && v !== 28)) throw new Error("signature must be 65 bytes r ‖ s ‖ v with v 27 or 28");
  const recovered = concat(Uint8Array.of(v - 27), bytes.subarray(0, 64));
  return addressOf(secp256k1.recoverPublicKey(recovered, digest, { prehash: false }));
}

/** A secp256k1 key that signs EIP-712 digests. */
export class SigningKey {
  private readonly secret: Uint8Array;
  /** Ethereum address of the key (0x, lowercase). */
  readonly address: string;

  /** A fresh random key, or the given 32-byte secret. */
  constructor(secret?: Uint8Array) {
    this.secret = secret ?? secp256k1.utils.randomSecretKey();
    this.address = addressOf(secp256k1.getPublicKey(this.secret, false));
  }

  /** Signs a 32-byte digest: 0x-hex r ‖ s ‖ v, deterministic (RFC 6979) and low-s. */
  signDigest(digest: Uint8Array): string {
    const recovered = secp256k1.sign(digest, this.secret, { prehash: false, format: "recovered" });
    const recovery = recovered[0] ?? 0;
    return `${hex0x(recovered.subarray(1))}${(27 + recovery).toString(16)}`;
  }
}
