// Probe reports signed with a per-session secp256k1 key, as EIP-712 typed data that a contract can check with
// ecrecover. The digest is documented in protocol/src/probe.rs; in short:
//
//   digest = keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(report))
//   domainSeparator = keccak256(abi.encode(keccak256("EIP712Domain(string name,string version)"),
//                                          keccak256("Gridplay"), keccak256("1")))
//   hashStruct = keccak256(abi.encode(keccak256(PROBE_REPORT_TYPE), keccak256(utf8(session_id)), seq, ...))
//
// A metric that was not measured (null) is encoded as NONE (2^32 - 1). The signature is r ‖ s ‖ v (v = 27 or 28,
// low s), 0x-hex. Shared test vectors: protocol/tests/vectors/probe_report.json. The encoding is src/eip712.ts.

import type { ProbeReport } from "../generated/ProbeReport";
import { domainSeparator, hashStruct, recoverAddress, SigningKey, stringWord, typedDigest, uintWord, type Domain } from "../eip712.ts";

export { addressOf, fromHex, toHex } from "../eip712.ts";

export const PROBE_REPORT_TYPE =
  "ProbeReport(bytes32 sessionId,uint32 seq,uint32 intervalMs,uint32 framesPresented,uint32 framesDecoded," +
  "uint32 fpsCenti,uint32 decodeUs,uint32 jitterUs,uint32 lossPpm,uint32 rttUs,uint32 clickToPhotonP50Us," +
  "uint32 clickToPhotonP95Us,uint32 clickToPhotonSamples,uint32 audioPacketsLost,uint32 audioConcealedSamples)";
/** The probe reports' domain: no chain, no contract. */
export const PROBE_DOMAIN: Domain = { name: "Gridplay", version: "1" };
/** The digest's encoding of a metric that was not measured. */
export const NONE = 0xffffffff;

export const probeDomainSeparator = (): Uint8Array => domainSeparator(PROBE_DOMAIN);

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
    opt(r.audio_packets_lost),
    opt(r.audio_concealed_samples),
  ];
  return hashStruct(PROBE_REPORT_TYPE, [stringWord(r.session_id), ...fields.map((f) => uintWord(f, 32))]);
}

/** What the session key signs. */
export function reportDigest(r: ProbeReport): Uint8Array {
  return typedDigest(PROBE_DOMAIN, structHash(r));
}

/** The address that signed `report` (what ecrecover gives); throws on a malformed signature. */
export function recoverSigner(report: ProbeReport, signature: string): string {
  return recoverAddress(reportDigest(report), signature);
}

/** A per-session secp256k1 key: lives only in this page, names itself to the broker (its `address` is the allocation's
 * `client_key`), signs the session's reports and is the voucher's `sessionKey`. */
export class SessionKey extends SigningKey {
  /** Signs a report: 0x-hex r ‖ s ‖ v, deterministic (RFC 6979) and low-s. */
  sign(report: ProbeReport): string {
    return this.signDigest(reportDigest(report));
  }
}
