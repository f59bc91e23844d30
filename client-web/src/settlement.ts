// The player's side of on-chain settlement: sign the session's voucher and hand it to the broker.
//
// The voucher is the settlement contract's EIP-712 `Voucher` (VOUCHER_TYPE) in the domain
// {name "Gridplay", version "1", chainId, verifyingContract: the contract} (chain/contracts/src/GridplayTypes.sol).
// It names the host's payout address, the session key (which signs the probe reports), the price, at most
// MAX_BLOCKS billable 15-minute blocks, an expiry and a nonce: keccak-256 of the broker's session id.
//
// The player's wallet signs it when the page has one (an EIP-1193 provider at `window.ethereum`, asked for
// `eth_signTypedData_v4`); otherwise a local demo chain's published player key (SettlementInfo.demo_player_key)
// does; with neither no voucher is sent and the session plays unbilled. Nothing here delays the stream; a failure is
// only reported.

import { getSettlement, submitVoucher } from "./api.ts";
import { addressWord, bytes32Word, fromHex, hashStruct, hex0x, SigningKey, stringWord, typedDigest, uintWord, type Domain } from "./eip712.ts";
import type { AllocateResponse } from "./generated/AllocateResponse";
import type { SettlementInfo } from "./generated/SettlementInfo";
import type { VoucherSubmission } from "./generated/VoucherSubmission";
import type { VoucherTerms } from "./generated/VoucherTerms";

export const VOUCHER_TYPE =
  "Voucher(address host,address sessionKey,uint256 pricePerBlock,uint32 maxBlocks,uint64 expiry,bytes32 nonce)";
/** Blocks a voucher lets the host bill (2 hours). */
export const MAX_BLOCKS = 8;
/** How long a voucher stays valid. */
export const VOUCHER_LIFETIME_S = 86_400;

export function voucherDomain(info: SettlementInfo): Domain {
  if (!/^\d+$/.test(info.chain_id)) throw new Error(`chain id is not decimal: ${info.chain_id}`);
  return { name: "Gridplay", version: "1", chainId: BigInt(info.chain_id), verifyingContract: info.contract };
}

/** EIP-712 hashStruct of a voucher. */
export function voucherStructHash(v: VoucherTerms): Uint8Array {
  if (!/^\d+$/.test(v.price_per_block)) throw new Error(`price per block is not decimal: ${v.price_per_block}`);
  return hashStruct(VOUCHER_TYPE, [
    addressWord(v.host),
    addressWord(v.session_key),
    uintWord(BigInt(v.price_per_block)),
    uintWord(v.max_blocks, 32),
    uintWord(v.expiry, 64),
    bytes32Word(v.nonce),
  ]);
}

/** What the player signs; also the session's id on chain. */
export function voucherDigest(info: SettlementInfo, v: VoucherTerms): Uint8Array {
  return typedDigest(voucherDomain(info), voucherStructHash(v));
}

/** The voucher of an allocation for `sessionKey` (its address), valid from `nowSeconds` (Unix) for a day. */
export function voucherTerms(allocation: AllocateResponse, sessionKey: string, nowSeconds: number): VoucherTerms {
  if (allocation.payout_address === undefined) throw new Error("the host names no payout address");
  return {
    host: allocation.payout_address,
    session_key: sessionKey,
    price_per_block: BigInt(allocation.price_per_block).toString(),
    max_blocks: MAX_BLOCKS,
    expiry: Math.floor(nowSeconds) + VOUCHER_LIFETIME_S,
    nonce: hex0x(stringWord(allocation.session_id)),
  };
}

export function signVoucher(info: SettlementInfo, terms: VoucherTerms, player: SigningKey): VoucherSubmission {
  return { voucher: terms, signature: player.signDigest(voucherDigest(info, terms)) };
}

/** An EIP-1193 provider: what browser wallets inject as `window.ethereum`. */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

/** Who pays for the session: an address and a way to sign its voucher. */
export interface Player {
  /** 0x address, lowercase. */
  address: string;
  /** "wallet" or "demo player", as the page names it. */
  kind: string;
  sign(info: SettlementInfo, terms: VoucherTerms): Promise<string>;
}

/** The voucher as EIP-712 typed data (the JSON `eth_signTypedData_v4` takes). */
export function voucherTypedData(info: SettlementInfo, terms: VoucherTerms): object {
  const domain = { name: "Gridplay", version: "1", chainId: voucherDomain(info).chainId?.toString(), verifyingContract: info.contract };
  return {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
      Voucher: [
        { name: "host", type: "address" },
        { name: "sessionKey", type: "address" },
        { name: "pricePerBlock", type: "uint256" },
        { name: "maxBlocks", type: "uint32" },
        { name: "expiry", type: "uint64" },
        { name: "nonce", type: "bytes32" },
      ],
    },
    primaryType: "Voucher",
    domain,
    message: {
      host: terms.host,
      sessionKey: terms.session_key,
      pricePerBlock: terms.price_per_block,
      maxBlocks: terms.max_blocks,
      expiry: terms.expiry,
      nonce: terms.nonce,
    },
  };
}

/** The wallet's first account as the player, or null when the page has no wallet. */
export async function walletPlayer(provider: Eip1193Provider | undefined): Promise<Player | null> {
  if (provider === undefined) return null;
  const accounts = await provider.request({ method: "eth_requestAccounts" });
  const first = Array.isArray(accounts) ? accounts[0] : undefined;
  if (typeof first !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(first)) throw new Error("the wallet gave no account");
  const address = first.toLowerCase();
  return {
    address,
    kind: "wallet",
    async sign(info, terms) {
      const typed = JSON.stringify(voucherTypedData(info, terms));
      const signature = await provider.request({ method: "eth_signTypedData_v4", params: [address, typed] });
      if (typeof signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(signature)) {
        throw new Error("the wallet's signature is not 65 bytes of hex");
      }
      return signature;
    },
  };
}

/** The demo player of a local chain as a player, or null when the broker offers none. */
function demoKeyPlayer(info: SettlementInfo): Player | null {
  const key = demoPlayer(info);
  if (key === null) return null;
  return { address: key.address, kind: "demo player", sign: async (i, terms) => signVoucher(i, terms, key).signature };
}

/** The demo player of a local chain, or null when the broker offers none. */
export function demoPlayer(info: SettlementInfo): SigningKey | null {
  if (info.demo_player_key === undefined) return null;
  const secret = fromHex(info.demo_player_key);
  if (secret.length !== 32) throw new Error("the demo player key is not 32 bytes");
  return new SigningKey(secret);
}

/** Where the session's voucher stands. */
export type VoucherState =
  /** The broker settles nothing, or has not said yet. */
  | { state: "off" }
  /** No voucher: no player key, or no payout address. */
  | { state: "skipped"; reason: string }
  | { state: "pending"; player: string; kind: string }
  | { state: "accepted"; player: string; kind: string }
  | { state: "failed"; reason: string };

/** `0x1234…abcd`: the head and tail of a long hex string. */
export function shortHex(hex: string, head = 4, tail = 4): string {
  return hex.length <= 2 + head + tail + 1 ? hex : `${hex.slice(0, 2 + head)}…${hex.slice(-tail)}`;
}

/** One line for the player ("" when the broker settles nothing). */
export function describeVoucher(v: VoucherState): string {
  switch (v.state) {
    case "off":
      return "";
    case "skipped":
      return `not billed: ${v.reason}`;
    case "pending":
      return `${v.kind} ${shortHex(v.player)}: sending voucher…`;
    case "accepted":
      return `${v.kind} ${shortHex(v.player)}: voucher accepted`;
    case "failed":
      return `voucher failed: ${v.reason}`;
  }
}

/** Fetches the broker's settlement info early; null (settles nothing) on any failure, which is logged. */
export function fetchSettlement(): Promise<SettlementInfo | null> {
  return getSettlement().catch((err: unknown) => {
    console.warn("gridplay: GET /v1/settlement failed; playing unbilled:", err);
    return null;
  });
}

/** A session whose voucher the broker accepted. */
export interface Settled {
  info: SettlementInfo;
  /** The player's address, which signed the voucher. */
  player: string;
  /** "wallet" or "demo player". */
  kind: string;
}

/**
 * Signs (with `wallet` when there is one, else the demo player) and submits the session's voucher once `settlement`
 * is known; `update` hears each state. Resolves when the broker accepted the voucher, else to null; never rejects.
 */
export async function sendVoucher(
  settlement: Promise<SettlementInfo | null>,
  allocation: AllocateResponse,
  sessionKey: string,
  update: (s: VoucherState) => void,
  wallet: Eip1193Provider | undefined,
): Promise<Settled | null> {
  try {
    const info = await settlement;
    if (info === null) return null;
    if (allocation.payout_address === undefined) {
      update({ state: "skipped", reason: "the host names no payout address" });
      return null;
    }
    const player = (await walletPlayer(wallet)) ?? demoKeyPlayer(info);
    if (player === null) {
      update({ state: "skipped", reason: "no wallet in this browser (and no demo player on this chain)" });
      return null;
    }
    update({ state: "pending", player: player.address, kind: player.kind });
    const terms = voucherTerms(allocation, sessionKey, Date.now() / 1000);
    await submitVoucher(allocation, { voucher: terms, signature: await player.sign(info, terms) });
    update({ state: "accepted", player: player.address, kind: player.kind });
    return { info, player: player.address, kind: player.kind };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    console.warn("gridplay: the voucher was not accepted; the session plays unbilled:", err);
    update({ state: "failed", reason });
    return null;
  }
}
