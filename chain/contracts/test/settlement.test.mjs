// GridplaySettlement on a real anvil: a full epoch, claims, disputes, bonds and escrow.
// Run with `npm test` after `npm ci` (and `node compile.mjs` if the sources changed).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ContractFunctionRevertedError,
  createPublicClient,
  createTestClient,
  createWalletClient,
  encodeDeployData,
  hashTypedData,
  http,
  keccak256,
  parseEther,
  toHex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';
import { startAnvil } from './anvil.mjs';
import { merkleTree } from '../scripts/merkle.mjs';
import {
  TYPES,
  VECTORS_PATH,
  hashLeaf,
  hashProbeSummary,
  loadVectors,
  vectorsText,
} from '../scripts/vectors.mjs';

const artifact = JSON.parse(
  readFileSync(new URL('../artifacts/GridplaySettlement.json', import.meta.url), 'utf8'),
);
const { abi, bytecode } = artifact;

const WINDOW = 3600n;
const UNBONDING = 7n * 86400n;
const WITHDRAWAL_DELAY = 2n * 86400n;
const MIN_BOND = parseEther('1');
const SLASH = parseEther('0.4');
const PRICE = parseEther('0.01');

const key = (label) => privateKeyToAccount(keccak256(toHex(`gridplay-test-${label}`)));
const who = Object.fromEntries(
  ['operator', 'host', 'host2', 'player', 'player2', 'sessionKey', 'checker', 'stranger'].map((l) => [
    l,
    key(l),
  ]),
);

let anvil;
let pub;
let wallet;
let testClient;

before(async () => {
  anvil = await startAnvil();
  const transport = http(anvil.url);
  pub = createPublicClient({ chain: foundry, transport });
  wallet = createWalletClient({ chain: foundry, transport });
  testClient = createTestClient({ chain: foundry, mode: 'anvil', transport });
  for (const account of Object.values(who)) {
    await testClient.setBalance({ address: account.address, value: parseEther('1000') });
  }
});

after(async () => {
  await anvil?.stop();
});

// ------------------------------------------------------------------ helpers

async function deploy(overrides = {}) {
  const args = [
    who.operator.address,
    overrides.window ?? WINDOW,
    overrides.unbonding ?? UNBONDING,
    overrides.withdrawalDelay ?? WITHDRAWAL_DELAY,
    overrides.minBond ?? MIN_BOND,
    overrides.slash ?? SLASH,
  ];
  const hash = await wallet.deployContract({ account: who.operator, abi, bytecode, args });
  const receipt = await pub.waitForTransactionReceipt({ hash });
  assert.equal(receipt.status, 'success');
  return makeContract(receipt.contractAddress);
}

function makeContract(address) {
  const domain = { name: 'Gridplay', version: '1', chainId: foundry.id, verifyingContract: address };
  const c = {
    address,
    read: (functionName, args = []) => pub.readContract({ address, abi, functionName, args }),
    /** Sends a transaction from `account`; throws the decoded revert before sending. */
    async write(account, functionName, args = [], value = 0n) {
      const { request, result } = await pub.simulateContract({
        account,
        address,
        abi,
        functionName,
        args,
        value,
      });
      const hash = await wallet.writeContract(request);
      const receipt = await pub.waitForTransactionReceipt({ hash });
      assert.equal(receipt.status, 'success');
      return { result, receipt };
    },
    /** A voucher signed by `player`, with its on-chain session id. */
    async voucher(player, fields = {}) {
      const now = await latest();
      const message = {
        host: who.host.address,
        sessionKey: who.sessionKey.address,
        pricePerBlock: PRICE,
        maxBlocks: 4,
        expiry: now + 86400n,
        nonce: keccak256(toHex(`nonce-${Math.random()}`)),
        ...fields,
      };
      const typed = { domain, types: { Voucher: TYPES.Voucher }, primaryType: 'Voucher', message };
      return {
        voucher: message,
        signature: await player.signTypedData(typed),
        sessionId: hashTypedData(typed),
        player: player.address,
      };
    },
    /** An observer's signature over a probe summary. */
    signSummary: (signer, summary) =>
      signer.signTypedData({
        domain,
        types: { ProbeSummary: TYPES.ProbeSummary },
        primaryType: 'ProbeSummary',
        message: summary,
      }),
    /** Commits `leaves` as one epoch; returns the epoch id and the tree. */
    async commit(leaves, total) {
      const tree = merkleTree(leaves.map(hashLeaf));
      const sum = leaves.reduce((a, l) => a + l.amount, 0n);
      const { result, receipt } = await c.write(who.operator, 'commitEpoch', [
        tree.root,
        leaves.length,
        total ?? sum,
      ]);
      return {
        id: result,
        tree,
        leaves,
        gasUsed: receipt.gasUsed,
        proof: (leaf) => tree.proof(leaves.indexOf(leaf)),
      };
    },
  };
  return c;
}

async function latest() {
  return (await pub.getBlock()).timestamp;
}

async function advance(seconds) {
  await testClient.increaseTime({ seconds: Number(seconds) });
  await testClient.mine({ blocks: 1 });
}

/** Awaits `promise`, which must revert with custom error `name`; returns the error's args. */
async function reverts(promise, name) {
  try {
    await promise;
  } catch (e) {
    const revert = e.walk?.((x) => x instanceof ContractFunctionRevertedError);
    assert.equal(revert?.data?.errorName, name, e.shortMessage ?? e.message);
    return revert.data.args;
  }
  assert.fail(`expected a revert with ${name}`);
}

/** A delivered summary for a block and the leaf that bills it. */
function billed(s, blockIndex, amount = PRICE, summaryFields = {}) {
  const summary = {
    sessionId: s.sessionId,
    blockIndex,
    secondsCovered: 900,
    secondsMet: 900,
    amount,
    ...summaryFields,
  };
  return {
    summary,
    leaf: {
      sessionId: s.sessionId,
      blockIndex,
      player: s.player,
      host: s.voucher.host,
      amount,
      probeSummaryHash: hashProbeSummary(summary),
    },
  };
}

/** The `claim` argument for one session's leaves of an epoch. */
function sessionClaim(s, epoch, leaves) {
  return {
    voucher: s.voucher,
    signature: s.signature,
    blocks: leaves.map((l) => ({
      blockIndex: l.blockIndex,
      amount: l.amount,
      probeSummaryHash: l.probeSummaryHash,
      proof: epoch.proof(l),
    })),
  };
}

async function setUp(c, { deposit = parseEther('1'), players = [who.player] } = {}) {
  await c.write(who.host, 'registerHost', [], MIN_BOND);
  for (const p of players) await c.write(p, 'deposit', [], deposit);
}

const hostBond = async (c, host = who.host) => (await c.read('hosts', [host.address]))[0];
const escrow = async (c, player = who.player) => (await c.read('players', [player.address]))[0];

// ------------------------------------------------------------------ tests

describe('encodings', () => {
  test('committed vectors are what scripts/vectors.mjs writes', () => {
    assert.equal(readFileSync(VECTORS_PATH, 'utf8'), vectorsText());
  });

  test('the contract hashes leaves and probe summaries as the vectors say', async () => {
    const c = await deploy();
    const v = loadVectors();
    for (const { encoded: _e, hash, ...leaf } of v.leaves) {
      assert.equal(await c.read('leafHash', [leaf]), hash);
    }
    for (const { structHash, ...summary } of v.summaries) {
      assert.equal(await c.read('probeSummaryHash', [summary]), structHash);
    }
  });

  test('the session id is the voucher digest the player signs', async () => {
    const c = await deploy();
    const s = await c.voucher(who.player);
    assert.equal(await c.read('sessionIdOf', [s.voucher]), s.sessionId);
    const { summary } = billed(s, 0);
    assert.equal(
      await c.read('probeSummaryDigest', [summary]),
      hashTypedData({
        domain: { name: 'Gridplay', version: '1', chainId: foundry.id, verifyingContract: c.address },
        types: { ProbeSummary: TYPES.ProbeSummary },
        primaryType: 'ProbeSummary',
        message: summary,
      }),
    );
    assert.equal(
      await c.read('domainSeparator'),
      keccak256(
        (await import('viem')).encodeAbiParameters(
          [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }, { type: 'uint256' }, { type: 'address' }],
          [
            keccak256(
              toHex(
                'EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)',
              ),
            ),
            keccak256(toHex('Gridplay')),
            keccak256(toHex('1')),
            BigInt(foundry.id),
            c.address,
          ],
        ),
      ),
    );
  });
});

describe('a full epoch', () => {
  test('deposit, vouchers, commit, challenge window, claim; a double claim fails', async () => {
    const c = await deploy();
    await setUp(c, { players: [who.player, who.player2] });
    await c.write(who.host2, 'registerHost', [], MIN_BOND);
    const a = await c.voucher(who.player);
    const b = await c.voucher(who.player2);
    const other = await c.voucher(who.player, { host: who.host2.address });
    const aLeaves = [
      billed(a, 0).leaf,
      billed(a, 1).leaf,
      billed(a, 2, PRICE / 3n, { secondsCovered: 300, secondsMet: 300 }).leaf,
    ];
    const bLeaves = [billed(b, 0).leaf, billed(b, 1, 0n, { secondsMet: 10 }).leaf];
    const otherLeaves = [billed(other, 0).leaf];
    const epoch = await c.commit([...aLeaves, ...otherLeaves, ...bLeaves]);
    assert.equal(epoch.id, 0n);
    console.log(`# commit of one epoch root: ${epoch.gasUsed} gas`);
    const [root, , leafCount, total] = await c.read('epochs', [0n]);
    assert.equal(root, epoch.tree.root);
    assert.equal(leafCount, 6);
    assert.equal(total, PRICE * 4n + PRICE / 3n);

    const claimArgs = [0n, who.host.address, [sessionClaim(a, epoch, aLeaves), sessionClaim(b, epoch, bLeaves)]];
    await reverts(c.write(who.host, 'claim', claimArgs), 'ChallengeWindowOpen');
    await advance(WINDOW);

    const before = await pub.getBalance({ address: who.host.address });
    const { result, receipt } = await c.write(who.stranger, 'claim', claimArgs);
    const owedA = PRICE * 2n + PRICE / 3n;
    assert.equal(result, owedA + PRICE);
    assert.equal(await pub.getBalance({ address: who.host.address }), before + owedA + PRICE);
    assert.equal(await escrow(c), parseEther('1') - owedA);
    assert.equal(await escrow(c, who.player2), parseEther('1') - PRICE);
    assert.equal(await c.read('isSettled', [a.sessionId, 2]), true);
    assert.equal(await c.read('isSettled', [a.sessionId, 3]), false);
    console.log(`# claim of 5 blocks in 2 sessions: ${receipt.gasUsed} gas`);

    await reverts(c.write(who.host, 'claim', claimArgs), 'BlockAlreadySettled');
    await reverts(
      c.write(who.host, 'claim', [0n, who.host.address, [sessionClaim(other, epoch, otherLeaves)]]),
      'WrongHost',
    );
    await c.write(who.host2, 'claim', [0n, who.host2.address, [sessionClaim(other, epoch, otherLeaves)]]);
    const [, , , , claimed] = await c.read('epochs', [0n]);
    assert.equal(claimed, total);
  });

  test('a forged leaf does not prove, and only the operator commits', async () => {
    const c = await deploy();
    await setUp(c);
    const a = await c.voucher(who.player);
    const leaf = billed(a, 0).leaf;
    const epoch = await c.commit([leaf, billed(a, 1).leaf]);
    await advance(WINDOW);
    const forged = sessionClaim(a, epoch, [leaf]);
    forged.blocks[0].amount = PRICE - 1n;
    await reverts(c.write(who.host, 'claim', [epoch.id, who.host.address, [forged]]), 'InvalidProof');
    await reverts(c.write(who.stranger, 'commitEpoch', [epoch.tree.root, 1, 0n]), 'NotOperator');
    await reverts(c.write(who.stranger, 'setChecker', [who.stranger.address, true]), 'NotOperator');
    await reverts(c.write(who.operator, 'commitEpoch', [`0x${'00'.repeat(32)}`, 0, 0n]), 'EmptyRoot');
    await reverts(c.write(who.host, 'claim', [9n, who.host.address, []]), 'UnknownEpoch');
  });

  test('claims never exceed the epoch total or the player escrow', async () => {
    const c = await deploy();
    await setUp(c, { deposit: PRICE + PRICE / 2n });
    const a = await c.voucher(who.player);
    const leaves = [billed(a, 0).leaf, billed(a, 1).leaf];
    const short = await c.commit(leaves, PRICE / 2n);
    const full = await c.commit(leaves);
    await advance(WINDOW);
    await reverts(
      c.write(who.host, 'claim', [short.id, who.host.address, [sessionClaim(a, short, leaves.slice(0, 1))]]),
      'EpochTotalExceeded',
    );
    await reverts(
      c.write(who.host, 'claim', [full.id, who.host.address, [sessionClaim(a, full, leaves)]]),
      'InsufficientEscrow',
    );
    await c.write(who.host, 'claim', [full.id, who.host.address, [sessionClaim(a, full, leaves.slice(0, 1))]]);
    assert.equal(await escrow(c), PRICE / 2n);
  });
});

describe('vouchers', () => {
  test('a replayed voucher cannot bill a block twice or past maxBlocks', async () => {
    const c = await deploy();
    await setUp(c);
    const a = await c.voucher(who.player, { maxBlocks: 2 });
    const leaves = [billed(a, 0).leaf, billed(a, 1).leaf];
    const first = await c.commit(leaves);
    await advance(WINDOW);
    await c.write(who.host, 'claim', [first.id, who.host.address, [sessionClaim(a, first, leaves)]]);

    // The same voucher again, even under a fresh signature, is the same session.
    const again = { ...a, signature: await who.player.signTypedData({
      domain: { name: 'Gridplay', version: '1', chainId: foundry.id, verifyingContract: c.address },
      types: { Voucher: TYPES.Voucher },
      primaryType: 'Voucher',
      message: a.voucher,
    }) };
    const beyond = billed(a, 2).leaf;
    const second = await c.commit([...leaves, beyond]);
    await advance(WINDOW);
    await reverts(
      c.write(who.host, 'claim', [second.id, who.host.address, [sessionClaim(again, second, leaves.slice(1))]]),
      'BlockAlreadySettled',
    );
    await reverts(
      c.write(who.host, 'claim', [second.id, who.host.address, [sessionClaim(again, second, [beyond])]]),
      'BlockBeyondVoucher',
    );
    assert.equal(await escrow(c), parseEther('1') - 2n * PRICE);
  });

  test('an expired voucher cannot be claimed, and its leaf is disputable', async () => {
    const c = await deploy();
    await setUp(c);
    const a = await c.voucher(who.player, { expiry: (await latest()) + 100n });
    const leaf = billed(a, 0).leaf;
    await advance(200);
    const epoch = await c.commit([leaf, billed(a, 1).leaf]);
    await c.write(who.player, 'disputeBeyondVoucher', [epoch.id, leaf, epoch.proof(leaf), a.voucher, a.signature]);
    assert.equal(await hostBond(c), MIN_BOND - SLASH);
    await advance(WINDOW);
    const other = epoch.leaves[1];
    await reverts(
      c.write(who.host, 'claim', [epoch.id, who.host.address, [sessionClaim(a, epoch, [other])]]),
      'VoucherExpired',
    );
  });

  test('a leaf over the price is not claimable', async () => {
    const c = await deploy();
    await setUp(c);
    const a = await c.voucher(who.player);
    const leaf = billed(a, 0, PRICE + 1n).leaf;
    const epoch = await c.commit([leaf]);
    await advance(WINDOW);
    await reverts(
      c.write(who.host, 'claim', [epoch.id, who.host.address, [sessionClaim(a, epoch, [leaf])]]),
      'AmountAbovePrice',
    );
  });
});

describe('disputes', () => {
  test('a leaf beyond its voucher is refunded and slashes the host; a false dispute fails', async () => {
    const c = await deploy();
    await setUp(c);
    await c.write(who.host2, 'registerHost', [], MIN_BOND);
    const a = await c.voucher(who.player, { maxBlocks: 3 });
    const good = billed(a, 0).leaf;
    const overPrice = { ...billed(a, 1).leaf, amount: PRICE * 2n };
    const wrongHost = { ...billed(a, 2).leaf, host: who.host2.address };
    const pastMax = billed(a, 3).leaf;
    const epoch = await c.commit([good, pastMax, overPrice, wrongHost]);
    const dispute = (leaf, s = a) =>
      c.write(who.player, 'disputeBeyondVoucher', [epoch.id, leaf, epoch.proof(leaf), s.voucher, s.signature]);

    await reverts(dispute(good), 'LeafWithinVoucher');
    const b = await c.voucher(who.player2);
    await reverts(dispute(good, b), 'VoucherMismatch');

    const { receipt } = await dispute(pastMax);
    console.log(`# dispute beyond voucher: ${receipt.gasUsed} gas`);
    assert.equal(await hostBond(c), MIN_BOND - SLASH);
    await dispute(overPrice);
    assert.equal(await hostBond(c), MIN_BOND - 2n * SLASH);
    await reverts(dispute(overPrice), 'BlockAlreadySettled');
    await dispute(wrongHost);
    assert.equal(await hostBond(c, who.host2), MIN_BOND - SLASH);
    assert.equal(await c.read('slashedTotal'), 3n * SLASH);
    assert.equal(await escrow(c), parseEther('1'));

    await advance(WINDOW);
    await reverts(dispute(good), 'ChallengeWindowClosed');
    await c.write(who.host, 'claim', [epoch.id, who.host.address, [sessionClaim(a, epoch, [good])]]);
    assert.equal(await escrow(c), parseEther('1') - PRICE);
  });

  test('a probe summary signed by the session key or a checker refunds and slashes', async () => {
    const c = await deploy();
    await setUp(c);
    const a = await c.voucher(who.player);
    const blocks = [0, 1, 2, 3].map((i) => billed(a, i));
    const epoch = await c.commit(blocks.map((b) => b.leaf));
    const bad = (i) => ({ ...blocks[i].summary, secondsMet: 12, amount: 0n });
    const dispute = async (i, signer, summary = bad(i)) =>
      c.write(who.player, 'disputeProbeSummary', [
        epoch.id,
        blocks[i].leaf,
        epoch.proof(blocks[i].leaf),
        a.voucher,
        a.signature,
        summary,
        await c.signSummary(signer, summary),
      ]);

    await reverts(dispute(0, who.stranger), 'UnauthorisedObserver');
    await reverts(dispute(0, who.sessionKey, blocks[0].summary), 'SummaryAgreesWithLeaf');
    await reverts(dispute(0, who.sessionKey, bad(1)), 'SummaryMismatch');

    const { receipt } = await dispute(0, who.sessionKey);
    console.log(`# dispute by probe summary: ${receipt.gasUsed} gas`);
    assert.equal(await hostBond(c), MIN_BOND - SLASH);
    await reverts(dispute(1, who.checker), 'UnauthorisedObserver');
    await c.write(who.operator, 'setChecker', [who.checker.address, true]);
    await dispute(1, who.checker);
    await dispute(2, who.sessionKey);
    assert.equal(await hostBond(c), 0n, 'the slash is capped at the bond');
    assert.equal(await c.read('slashedTotal'), MIN_BOND);

    await advance(WINDOW);
    const claimArgs = (i) => [epoch.id, who.host.address, [sessionClaim(a, epoch, [blocks[i].leaf])]];
    await reverts(c.write(who.host, 'claim', claimArgs(0)), 'BlockAlreadySettled');
    await c.write(who.host, 'claim', claimArgs(3));
    assert.equal(await escrow(c), parseEther('1') - PRICE);
  });
});

describe('bonds and escrow', () => {
  test('a host bonds, unbonds after the period, and cannot top up while unbonding', async () => {
    const c = await deploy();
    await reverts(c.write(who.host, 'registerHost', [], MIN_BOND - 1n), 'BondTooSmall');
    await reverts(c.write(who.host, 'requestUnbond'), 'NotBonded');
    await c.write(who.host, 'registerHost', [], MIN_BOND);
    await c.write(who.host, 'registerHost', [], 1n);
    assert.equal(await hostBond(c), MIN_BOND + 1n);
    await reverts(c.write(who.host, 'withdrawBond'), 'BondLocked');
    await c.write(who.host, 'requestUnbond');
    await reverts(c.write(who.host, 'requestUnbond'), 'AlreadyUnbonding');
    await reverts(c.write(who.host, 'registerHost', [], 1n), 'AlreadyUnbonding');
    await advance(UNBONDING - 10n);
    await reverts(c.write(who.host, 'withdrawBond'), 'BondLocked');
    await advance(10n);
    const before = await pub.getBalance({ address: c.address });
    await c.write(who.host, 'withdrawBond');
    assert.equal(await pub.getBalance({ address: c.address }), before - MIN_BOND - 1n);
    assert.equal(await hostBond(c), 0n);
  });

  test('a player withdraws after the delay what claims left', async () => {
    const c = await deploy();
    await setUp(c);
    await reverts(c.write(who.player, 'requestWithdrawal', [parseEther('2')]), 'InvalidAmount');
    await reverts(c.write(who.player, 'withdraw'), 'WithdrawalLocked');
    const a = await c.voucher(who.player);
    const leaf = billed(a, 0).leaf;
    const epoch = await c.commit([leaf]);
    await c.write(who.player, 'requestWithdrawal', [parseEther('1')]);
    await advance(WINDOW);
    await reverts(c.write(who.player, 'withdraw'), 'WithdrawalLocked');
    await c.write(who.host, 'claim', [epoch.id, who.host.address, [sessionClaim(a, epoch, [leaf])]]);
    await advance(WITHDRAWAL_DELAY);
    const before = await pub.getBalance({ address: c.address });
    await c.write(who.player, 'withdraw');
    assert.equal(await pub.getBalance({ address: c.address }), before - (parseEther('1') - PRICE));
    assert.equal(await escrow(c), 0n);
  });

  test('the constructor rejects inconsistent periods', async () => {
    const data = encodeDeployData({
      abi,
      bytecode,
      args: [who.operator.address, WINDOW, WINDOW - 1n, WITHDRAWAL_DELAY, MIN_BOND, SLASH],
    });
    await assert.rejects(pub.call({ account: who.operator.address, data }), /0x[0-9a-f]*|revert/i);
    const ok = encodeDeployData({
      abi,
      bytecode,
      args: [who.operator.address, WINDOW, WINDOW, WINDOW, MIN_BOND, SLASH],
    });
    await pub.call({ account: who.operator.address, data: ok });
  });
});
