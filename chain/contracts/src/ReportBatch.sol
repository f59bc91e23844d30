// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {GridplayTypes as T} from "./GridplayTypes.sol";

/// @title Comparison only: settling each signed verification report on-chain as it comes
/// @notice Not part of Gridplay. `gridplay-bench chain` measures it against
/// `GridplaySettlement`'s one root per epoch plus batched claims: here every block's signed
/// probe summary is sent on-chain, a few per transaction, and each is verified and recorded
/// as it arrives.
/// @dev Deliberately the least such a design must do, so that the comparison favours it: per
/// report one EIP-712 signature recovery, one settled bit (the same per-session bitmap as
/// `GridplaySettlement`) and the amount added to the host's earnings. It does not check that
/// the signer is the session's key nor debit any escrow, which a real design would have to.
contract ReportBatch is EIP712 {
    /// @notice Wei owed to each host by the reports recorded so far.
    mapping(address host => uint256) public earned;

    /// @dev Recorded blocks: session id => block index / 256 => bits.
    mapping(bytes32 sessionId => mapping(uint256 word => uint256 bits)) private _recorded;

    /// @notice `signatures` does not hold one signature per report.
    error LengthMismatch();
    /// @notice A report for this block was already recorded.
    error AlreadyRecorded(bytes32 sessionId, uint32 blockIndex);

    /// @notice Deploys under the same EIP-712 domain name and version as the settlement.
    constructor() EIP712("Gridplay", "1") {}

    /// @notice Verifies and records signed probe summaries for blocks served by `host`.
    /// @param host The host the reports credit.
    /// @param reports The observers' summaries.
    /// @param signatures Each summary's 65-byte EIP-712 signature.
    /// @return total Wei credited to `host`.
    function submitReports(address host, T.ProbeSummary[] calldata reports, bytes[] calldata signatures)
        external
        returns (uint256 total)
    {
        if (reports.length != signatures.length) revert LengthMismatch();
        for (uint256 i; i < reports.length; ++i) {
            T.ProbeSummary calldata r = reports[i];
            ECDSA.recoverCalldata(_hashTypedDataV4(T.hashProbeSummary(r)), signatures[i]);
            uint256 bit = 1 << (r.blockIndex & 0xff);
            mapping(uint256 => uint256) storage words = _recorded[r.sessionId];
            uint256 bits = words[r.blockIndex >> 8];
            if (bits & bit != 0) revert AlreadyRecorded(r.sessionId, r.blockIndex);
            words[r.blockIndex >> 8] = bits | bit;
            total += r.amount;
        }
        earned[host] += total;
    }
}
