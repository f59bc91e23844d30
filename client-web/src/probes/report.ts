// Probe reports signed with a per-session secp256k1 key, as EIP-712 typed data that a contract can check with
// ecrecover. The digest is documented in protocol/src/probe.rs; in short:
//
//   digest = keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(report))
//   domainSeparator = keccak256(abi.encode(keccak256("EIP712Domain(string name,string version)"),
//                                          keccak256("Gridplay"), keccak256("1")))
//   hashStruct = keccak256(abi.encode(keccak256(PROBE_REPORT_TYPE), keccak256(utf8(session_id)), seq, ...))
//
// A metric that was not measured (null) is encoded as NONE (2^32 - 1). The signature is r ‖ s ‖ v (v = 27 or 28,
// low s), 0x-hex. Shared test vectors: protocol/tests/vectors/probe_report.json.

import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";

import type { ProbeReport } from "../generated/ProbeReport";

export const PROBE_REPORT_TYPE =
  "ProbeReport(bytes32 sessionId,uint32 seq,uint32 intervalMs,uint32 framesPresented,uint32 framesDecoded," +
  "uint32 fpsCenti,uint32 decodeUs,uint32 jitterUs,uint32 lossPpm,uint32 rttUs,uint32 clickToPhotonP50Us," +
  "uint32 clickToPhotonP95Us,uint32 clickToPhotonSamples)";
const DOMAIN_TYPE = "EIP712Domain(string name,string version)";
const DOMAIN_NAME = "Gridplay";
const DOMAIN_VERSION = "1";
/** The digest's encoding of a metric that was not measured. */
export const NONE = 0xffffffff;

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const text = hex.startsWith("0x") ? hex.slice(2) : hex;
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new Error(`not hex: ${hex}`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A uint32 as one 32-byte ABI word. */
function word(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`${value} is not a uint32`);
  const w = new Uint8Array(32);
  new DataView(w.buffer).setUint32(28, value);
  return w;
}

export function domainSeparator(): Uint8Array {
  return keccak_256(concat(keccak_256(utf8(DOMAIN_TYPE)), keccak_256(utf8(DOMAIN_NAME)), keccak_256(utf8(DOMAIN_VERSION))));
}

/** EIP-712 hashStruct of a report. */
export function structHash(r: ProbeReport): Uint8Array {
  const opt = (v: number | null): number => v ?? NONE;
  const fields = [
    r.seq,
    r.interval_ms,
    r.frames_presented,
    r.frames_decoded,
    r.fps_centi,
    opt(r.decode_us),
    opt(r.jitter_us),
    opt(r.loss_ppm),
    opt(r.rtt_us),
    opt(r.click_to_photon_p50_us),
    opt(r.click_to_photon_p95_us),
    r.click_to_photon_samples,
  ];
  return keccak_256(concat(keccak_256(utf8(PROBE_REPORT_TYPE)), keccak_256(utf8(r.session_id)), ...fields.map(word)));
}

/** What the session key signs. */
export function reportDigest(r: ProbeReport): Uint8Array {
  return keccak_256(concat(Uint8Array.of(0x19, 0x01), domainSeparator(), structHash(r)));
}

/** The Ethereum address (0x, lowercase) of a public key in any SEC 1 form. */
export function addressOf(publicKey: Uint8Array): string {
  const uncompressed = secp256k1.Point.fromBytes(publicKey).toBytes(false);
  return `0x${toHex(keccak_256(uncompressed.subarray(1)).subarray(12))}`;
}

/** The address that signed `report` (what ecrecover gives); throws on a malformed signature. */
export function recoverSigner(report: ProbeReport, signature: string): string {
  const bytes = fromHex(signature);
  const v = bytes[64];
  if (bytes.length !== 65 || (v !== 27 && v !== 28)) throw new Error("signature must be 65 bytes r ‖ s ‖ v with v 27 or 28");
  const recovered = concat(Uint8Array.of(v - 27), bytes.subarray(0, 64));
  return addressOf(secp256k1.recoverPublicKey(recovered, reportDigest(report), { prehash: false }));
}

/** A per-session secp256k1 key: lives only in this page, names itself to the broker, signs the session's reports. */
export class SessionKey {
  private readonly secret: Uint8Array;
  /** Ethereum address of the key (0x, lowercase): the allocation's `client_key`. */
  readonly address: string;

  /** A fresh random key, or the given 32-byte secret (tests). */
  constructor(secret?: Uint8Array) {
    this.secret = secret ?? secp256k1.utils.randomSecretKey();
    this.address = addressOf(secp256k1.getPublicKey(this.secret, false));
  }

  /** Signs a report: 0x-hex r ‖ s ‖ v, deterministic (RFC 6979) and low-s. */
  sign(report: ProbeReport): string {
    const recovered = secp256k1.sign(reportDigest(report), this.secret, { prehash: false, format: "recovered" });
    const recovery = recovered[0] ?? 0;
    return `0x${toHex(recovered.subarray(1))}${(27 + recovery).toString(16)}`;
  }
}
