// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Gridplay settlement records and how each is hashed
/// @notice The off-chain parts of Gridplay (the Rust `gridplay-chain` crate, the web client)
/// hash these records byte for byte as this library does; `chain/tests/vectors/leaves.json`
/// pins the encodings.
library GridplayTypes {
    /// @notice A player's off-chain authorisation of one session, signed by the player as
    /// EIP-712 typed data. Nothing is sent on-chain when a session starts.
    /// @dev The on-chain session id is the EIP-712 digest of the voucher, so a voucher is one
    /// session: using it twice bills the same (session, block) slots, each payable once.
    struct Voucher {
        /// The only host that may bill this session.
        address host;
        /// The client's per-session key; it signs the session's probe summaries.
        address sessionKey;
        /// Wei for one delivered 15-minute block; a partial last block bills less.
        uint256 pricePerBlock;
        /// Block indices `0 .. maxBlocks - 1` may be billed.
        uint32 maxBlocks;
        /// Unix time after which no epoch holding one of this session's blocks may be committed.
        uint64 expiry;
        /// The broker's session id (or any fresh value): keeps equal-looking vouchers apart.
        bytes32 nonce;
    }

    /// @notice What an observer (the client's session key or a registered checker) saw of one
    /// block, and what the billing rule makes of it.
    struct ProbeSummary {
        /// On-chain session id (the voucher's EIP-712 digest).
        bytes32 sessionId;
        /// Index of the 15-minute block within the session, from 0.
        uint32 blockIndex;
        /// Seconds of the block the session covered (900, or fewer for a last block).
        uint32 secondsCovered;
        /// Covered seconds whose probes met the session's bar.
        uint32 secondsMet;
        /// Billable wei by the billing rule (`gridplay_chain::billing`).
        uint256 amount;
    }

    /// @notice EIP-712 type hash of `Voucher`.
    bytes32 internal constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address host,address sessionKey,uint256 pricePerBlock,uint32 maxBlocks,uint64 expiry,bytes32 nonce)"
    );

    /// @notice EIP-712 type hash of `ProbeSummary`.
    bytes32 internal constant PROBE_SUMMARY_TYPEHASH = keccak256(
        "ProbeSummary(bytes32 sessionId,uint32 blockIndex,uint32 secondsCovered,uint32 secondsMet,uint256 amount)"
    );

    /// @notice EIP-712 struct hash of a voucher (before the domain is applied).
    function hashVoucher(Voucher calldata v) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(VOUCHER_TYPEHASH, v.host, v.sessionKey, v.pricePerBlock, v.maxBlocks, v.expiry, v.nonce)
        );
    }

    /// @notice EIP-712 struct hash of a probe summary; this is the leaf's `probeSummaryHash`.
    function hashProbeSummary(ProbeSummary calldata s) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(PROBE_SUMMARY_TYPEHASH, s.sessionId, s.blockIndex, s.secondsCovered, s.secondsMet, s.amount)
        );
    }
}
