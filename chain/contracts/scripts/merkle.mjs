// The epoch tree as `gridplay_chain::MerkleTree` builds it: leaves in the given order, each
// pair hashed in sorted order (OpenZeppelin `MerkleProof`), an odd node carried up unpaired.
import { concat, keccak256 } from 'viem';

const hashPair = (a, b) => keccak256(concat(BigInt(a) <= BigInt(b) ? [a, b] : [b, a]));

/** Builds the tree over 32-byte hex leaves; returns { root, proof(index) }. */
export function merkleTree(leaves) {
  if (leaves.length === 0) throw new Error('a Merkle tree needs at least one leaf');
  const levels = [leaves];
  while (levels.at(-1).length > 1) {
    const level = levels.at(-1);
    const next = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? hashPair(level[i], level[i + 1]) : level[i]);
    }
    levels.push(next);
  }
  return {
    root: levels.at(-1)[0],
    proof(index) {
      const proof = [];
      for (const level of levels.slice(0, -1)) {
        if ((index ^ 1) < level.length) proof.push(level[index ^ 1]);
        index >>= 1;
      }
      return proof;
    },
  };
}
