// The settlement voucher (src/settlement.ts over src/eip712.ts) and the receipt's formatting (src/receipt.ts).
//
// The expected hashes and signature below were computed once, independently, with viem's hashDomain, hashStruct,
// hashTypedData and signTypedData (chain/contracts/node_modules/viem, as the contract's own tests sign vouchers) for
// the voucher in `terms`; the EIP712Domain type hash is the well-known constant every EIP-712 implementation shares.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";

import { keccak_256 } from "@noble/hashes/sha3.js";

import {
  addressWord,
  bytes32Word,
  concat,
  domainSeparator,
  domainType,
  fromHex,
  hex0x,
  recoverAddress,
  SigningKey,
  stringWord,
  typeHash,
  uintWord,
} from "../src/eip712.ts";
import type { AllocateResponse } from "../src/generated/AllocateResponse";
import type { ReceiptLine } from "../src/generated/ReceiptLine";
import type { SettlementInfo } from "../src/generated/SettlementInfo";
import type { VoucherSubmission } from "../src/generated/VoucherSubmission";
import type { VoucherTerms } from "../src/generated/VoucherTerms";
import { formatEth, lineText, pollWindowMs, receiptFileName, receiptSettled, verifyCommand } from "../src/receipt.ts";
import {
  demoPlayer,
  describeVoucher,
  type Eip1193Provider,
  sendVoucher,
  signVoucher,
  VOUCHER_TYPE,
  voucherDigest,
  voucherDomain,
  voucherStructHash,
  voucherTerms,
  type VoucherState,
} from "../src/settlement.ts";

/** Anvil's account #1: the demo player of these tests. */
const PLAYER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const PLAYER = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
/** secp256k1's group order. */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

const info: SettlementInfo = {
  chain_id: "31337",
  contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  epoch_seconds: 10,
  rpc_url: "http://127.0.0.1:8545",
  demo_player_key: PLAYER_KEY,
  service_level: { min_fps_percent: 80, max_rtt_ms: 250, max_click_to_photon_ms: 250, max_loss_ppm: 50_000, min_met_bps: 9_000 },
};
const allocation: AllocateResponse = {
  session_id: "sess-1",
  host_id: "h",
  whep_url: "http://127.0.0.1/whep",
  token: "tok",
  expires_at_ms: 0,
  ice_servers: [],
  payout_address: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
  price_per_block: "1000000000000000",
};
const SESSION_KEY = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const NOW_S = 1_700_000_000;
const terms: VoucherTerms = {
  host: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
  session_key: SESSION_KEY,
  price_per_block: "1000000000000000",
  max_blocks: 8,
  expiry: 1_700_086_400,
  nonce: "0xac3394aedd5f0646001ad6ed50b0b93f03346087c5f8d9e1af1c7be8993c068a",
};

const expected = {
  voucherTypeHash: "0x5422596641001a7eacfad1fc8b9b47be9eb1ba06a7d85ccd92c04473cd7b521d",
  domainTypeHash: "0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f",
  domainSeparator: "0x92961d884cde7b02ddd5cae295f42255276bcfaa53d2e66943f0b59b46e5f142",
  structHash: "0x336d577e9683b5051a99fe21b8e7db593900df6344c52d6fddf5a023d3aa248a",
  digest: "0x4e1a168ccec2d094eb30596b3b331018713f0b916ce6eaa8a2f3d6a6132e4c1a",
  signature:
    "0xc775793b964716293b0e88fe794fdbd707cedbc293208ad566ecc2c0cd1e76945e581fbbbbef8f498a06885716568ad02e5459eb1c3dc9617fd189fb4f02c7881c",
};

describe("ABI words", () => {
  test("unsigned integers are big-endian and left-padded, in range only", () => {
    assert.equal(hex0x(uintWord(1)), `0x${"00".repeat(31)}01`);
    assert.equal(hex0x(uintWord(0xffffffff, 32)), `0x${"00".repeat(28)}ffffffff`);
    assert.equal(hex0x(uintWord(2n ** 64n - 1n, 64)), `0x${"00".repeat(24)}${"ff".repeat(8)}`);
    assert.equal(hex0x(uintWord(2n ** 256n - 1n)), `0x${"ff".repeat(32)}`);
    assert.throws(() => uintWord(2 ** 32, 32), RangeError);
    assert.throws(() => uintWord(-1), RangeError);
    assert.throws(() => uintWord(1.5), RangeError);
    assert.throws(() => uintWord(2n ** 256n), RangeError);
  });

  test("addresses are left-padded to 32 bytes, any case", () => {
    assert.equal(hex0x(addressWord("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")), `0x${"00".repeat(12)}3c44cdddb6a900fa2b585dd299e03d12fa4293bc`);
    assert.throws(() => addressWord("0x3c44"));
    assert.throws(() => addressWord("3c44cdddb6a900fa2b585dd299e03d12fa4293bc"));
  });

  test("bytes32 is taken as is", () => {
    assert.equal(hex0x(bytes32Word(terms.nonce)), terms.nonce);
    assert.throws(() => bytes32Word("0x12"));
  });
});

describe("the voucher's EIP-712 digest", () => {
  test("type hashes", () => {
    assert.equal(hex0x(typeHash(VOUCHER_TYPE)), expected.voucherTypeHash);
    assert.equal(domainType(voucherDomain(info)), "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    assert.equal(hex0x(typeHash(domainType(voucherDomain(info)))), expected.domainTypeHash);
    assert.equal(domainType({ name: "Gridplay", version: "1" }), "EIP712Domain(string name,string version)");
  });

  test("domain separator, struct hash and digest", () => {
    assert.equal(hex0x(domainSeparator(voucherDomain(info))), expected.domainSeparator);
    assert.equal(hex0x(voucherStructHash(terms)), expected.structHash);
    assert.equal(hex0x(voucherDigest(info, terms)), expected.digest);
  });

  test("the terms of an allocation", () => {
    assert.deepEqual(voucherTerms(allocation, SESSION_KEY, NOW_S + 0.7), terms);
    const { payout_address: _, ...unpaid } = allocation;
    assert.throws(() => voucherTerms(unpaid, SESSION_KEY, NOW_S), /payout address/);
  });

  test("the demo player signs: deterministic, low s, recovers to the player", () => {
    const player = demoPlayer(info);
    assert.ok(player !== null);
    assert.equal(player.address, PLAYER);
    const { signature } = signVoucher(info, terms, player);
    assert.equal(signature, expected.signature);
    const bytes = fromHex(signature);
    assert.equal(bytes.length, 65);
    assert.ok(bytes[64] === 27 || bytes[64] === 28);
    const s = BigInt(hex0x(bytes.subarray(32, 64)));
    assert.ok(s > 0n && s <= N / 2n, "high s");
    assert.equal(recoverAddress(voucherDigest(info, terms), signature), PLAYER);
    assert.notEqual(recoverAddress(voucherDigest(info, { ...terms, max_blocks: 9 }), signature), PLAYER);
    assert.notEqual(recoverAddress(voucherDigest({ ...info, chain_id: "1" }, terms), signature), PLAYER);
  });

  test("no demo key, no player; malformed numbers are refused", () => {
    const { demo_player_key: _, ...real } = info;
    assert.equal(demoPlayer(real), null);
    assert.throws(() => demoPlayer({ ...info, demo_player_key: "0x1234" }));
    assert.throws(() => voucherDomain({ ...info, chain_id: "0x7a69" }));
    assert.throws(() => voucherStructHash({ ...terms, price_per_block: "1e18" }));
  });
});

describe("submitting the voucher", () => {
  const realFetch = globalThis.fetch;
  const realWarn = console.warn;
  beforeEach(() => {
    console.warn = (): void => undefined; // sendVoucher logs its failures
  });
  afterEach(() => {
    globalThis.fetch = realFetch;
    console.warn = realWarn;
  });

  /** Answers each request with `answer(url, init)`, recording the requests. */
  function stubFetch(answer: (url: string, init: RequestInit | undefined) => Response): { url: string; init: RequestInit | undefined }[] {
    const seen: { url: string; init: RequestInit | undefined }[] = [];
    globalThis.fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const url = String(input);
      seen.push({ url, init });
      return Promise.resolve(answer(url, init));
    };
    return seen;
  }

  test("a signed voucher for the allocation, with the session's token; accepted on 204", async () => {
    const seen = stubFetch(() => new Response(null, { status: 204 }));
    const states: VoucherState[] = [];
    const settled = await sendVoucher(Promise.resolve(info), allocation, SESSION_KEY, (s) => states.push(s), undefined);
    assert.deepEqual(settled, { info, player: PLAYER, kind: "demo player" });
    assert.deepEqual(states, [
      { state: "pending", player: PLAYER, kind: "demo player" },
      { state: "accepted", player: PLAYER, kind: "demo player" },
    ]);
    const [request] = seen;
    assert.ok(request !== undefined && seen.length === 1);
    assert.equal(request.url, "/v1/sessions/sess-1/voucher");
    assert.equal(request.init?.method, "POST");
    assert.deepEqual(request.init?.headers, { "Content-Type": "application/json", Authorization: "Bearer tok" });
    const body = JSON.parse(String(request.init?.body)) as VoucherSubmission;
    assert.equal(body.voucher.host, allocation.payout_address);
    assert.equal(body.voucher.session_key, SESSION_KEY);
    assert.equal(body.voucher.nonce, terms.nonce);
    assert.equal(recoverAddress(voucherDigest(info, body.voucher), body.signature), PLAYER);
  });

  test("a refusal is reported with the broker's message, and the session is not billed", async () => {
    stubFetch(() => Response.json({ error: "bad_voucher", message: "the voucher names another host" }, { status: 422 }));
    const states: VoucherState[] = [];
    assert.equal(await sendVoucher(Promise.resolve(info), allocation, SESSION_KEY, (s) => states.push(s), undefined), null);
    assert.deepEqual(states.at(-1), { state: "failed", reason: "the voucher names another host" });
    assert.equal(describeVoucher(states.at(-1) ?? { state: "off" }), "voucher failed: the voucher names another host");
  });

  test("a wallet in the page signs the voucher as EIP-712 typed data, which hashes to the voucher's digest", async () => {
    const seen = stubFetch(() => new Response(null, { status: 204 }));
    const account = new SigningKey(fromHex(PLAYER_KEY));
    const asked: string[] = [];
    // A stand-in for a browser wallet: it hashes whatever typed data it is given, generically.
    const wallet: Eip1193Provider = {
      request({ method, params }) {
        asked.push(method);
        if (method === "eth_requestAccounts") return Promise.resolve([PLAYER.toUpperCase().replace("0X", "0x")]);
        const [from, json] = params as [string, string];
        assert.equal(from, PLAYER);
        return Promise.resolve(account.signDigest(typedDataDigest(JSON.parse(json) as TypedData)));
      },
    };
    const { demo_player_key: _, ...real } = info;
    const states: VoucherState[] = [];
    const settled = await sendVoucher(Promise.resolve(real), allocation, SESSION_KEY, (s) => states.push(s), wallet);
    assert.deepEqual(settled, { info: real, player: PLAYER, kind: "wallet" });
    assert.deepEqual(asked, ["eth_requestAccounts", "eth_signTypedData_v4"]);
    assert.equal(describeVoucher(states.at(-1) ?? { state: "off" }), "wallet 0x7099…79c8: voucher accepted");
    const body = JSON.parse(String(seen[0]?.init?.body)) as VoucherSubmission;
    assert.equal(recoverAddress(voucherDigest(real, body.voucher), body.signature), PLAYER);
  });

  test("nothing is sent without settlement or without a player key", async () => {
    const seen = stubFetch(() => new Response(null, { status: 204 }));
    const states: VoucherState[] = [];
    assert.equal(await sendVoucher(Promise.resolve(null), allocation, SESSION_KEY, (s) => states.push(s), undefined), null);
    assert.equal(states.length, 0);
    const { demo_player_key: _, ...real } = info;
    assert.equal(await sendVoucher(Promise.resolve(real), allocation, SESSION_KEY, (s) => states.push(s), undefined), null);
    assert.equal(states[0]?.state, "skipped");
    assert.equal(seen.length, 0);
  });
});

/** EIP-712 typed data as wallets take it (flat structs only). */
interface TypedData {
  types: Record<string, { name: string; type: string }[]>;
  primaryType: string;
  domain: Record<string, string | number>;
  message: Record<string, string | number>;
}

/** The EIP-712 digest of `typed`, from its own type descriptions (what a wallet computes). */
function typedDataDigest(typed: TypedData): Uint8Array {
  const word = (type: string, value: string | number): Uint8Array => {
    if (type === "string") return stringWord(String(value));
    if (type === "address") return addressWord(String(value));
    if (type === "bytes32") return bytes32Word(String(value));
    return uintWord(BigInt(value), Number(type.slice(4)));
  };
  const hash = (name: string, data: Record<string, string | number>): Uint8Array => {
    const fields = typed.types[name] ?? [];
    const type = `${name}(${fields.map((f) => `${f.type} ${f.name}`).join(",")})`;
    const value = (f: { name: string }): string | number => data[f.name] ?? "";
    return keccak_256(concat(typeHash(type), ...fields.map((f) => word(f.type, value(f)))));
  };
  return keccak_256(concat(new Uint8Array([0x19, 0x01]), hash("EIP712Domain", typed.domain), hash(typed.primaryType, typed.message)));
}

describe("the receipt", () => {
  const line = (over: Partial<ReceiptLine>): ReceiptLine => ({ block_index: 0, seconds_covered: 15, seconds_met: 14, delivered: true, amount: "1000000000000000", ...over });

  test("amounts in ETH with six decimals, rounded", () => {
    assert.equal(formatEth("0"), "0.000000 ETH");
    assert.equal(formatEth("1000000000000000"), "0.001000 ETH");
    assert.equal(formatEth("1234567890123456789"), "1.234568 ETH");
    assert.equal(formatEth("499999999999"), "0.000000 ETH");
    assert.equal(formatEth("500000000000"), "0.000001 ETH");
    assert.equal(formatEth("12000000000000000000000"), "12000.000000 ETH");
  });

  test("lines, committed or not", () => {
    assert.equal(lineText(line({})), "Block #0: 15 s covered, 14 s met · 0.001000 ETH · awaiting commit");
    const tx = "0x12c0ffee00000000000000000000000000000000000000000000000000000ab";
    assert.equal(lineText(line({ block_index: 1, epoch_id: "3", commit_tx: tx })), "Block #1: 15 s covered, 14 s met · 0.001000 ETH · committed in epoch 3, tx 0x12…ab");
  });

  test("done once every line is committed and the chain receipt is there", () => {
    const committed = line({ epoch_id: "1", commit_tx: "0xab" });
    assert.ok(!receiptSettled({ session_id: "s", lines: [], total: "0", receipt: {} }));
    assert.ok(!receiptSettled({ session_id: "s", lines: [committed, line({})], total: "0", receipt: {} }));
    assert.ok(!receiptSettled({ session_id: "s", lines: [committed], total: "0" }));
    assert.ok(receiptSettled({ session_id: "s", lines: [committed], total: "0", receipt: {} }));
  });

  test("the file, the command and the polling window", () => {
    assert.equal(receiptFileName("a1/b2"), "receipt-a1_b2.json");
    assert.equal(verifyCommand("s1", "http://127.0.0.1:8545"), "gridplay verify-receipt receipt-s1.json --rpc-url http://127.0.0.1:8545");
    assert.equal(verifyCommand("s1", undefined), "gridplay verify-receipt receipt-s1.json --rpc-url <RPC URL>");
    assert.equal(pollWindowMs(10), 30_000);
  });
});
