// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {GridplayTypes as T} from "./GridplayTypes.sol";
import {GridplayBonds} from "./GridplayBonds.sol";

/// @title Gridplay settlement: host bonds, player escrow, epoch roots, claims and disputes
/// @notice Sessions are billed in 15-minute blocks, in native currency (wei).
/// - Hosts bond as `GridplayBonds` describes.
/// - A player deposits into escrow and authorises each session off-chain with an EIP-712
///   `Voucher`; the session's on-chain id is the voucher's digest.
/// - The operator (the broker's settlement key) commits one Merkle root per epoch over every
///   billed block of every session (`GridplayTypes.hashLeaf`, sorted-pair tree as in
///   OpenZeppelin's `MerkleProof`), with the epoch's leaf count and total.
/// - Within `challengeWindow` of a commit anyone holding the evidence may dispute a block;
///   after it, anyone may claim a host's blocks, which moves the amounts from the players'
///   escrow to the host. Each (session, block) is settled once, by a claim or a dispute.
/// @dev A probe summary signed by the client's session key is the player's own measurement,
/// which Gridplay treats as authoritative for the block. The player gains at most the block's
/// price by it (slashed bond is burned, not paid to the disputer).
contract GridplaySettlement is EIP712, GridplayBonds {
    /// @notice Everything a host claims for one session: the voucher, the player's signature
    /// over it, and the blocks with their Merkle proofs.
    struct SessionClaim {
        /// The player's voucher for the session.
        T.Voucher voucher;
        /// The player's 65-byte EIP-712 signature over `voucher`.
        bytes signature;
        /// The session's blocks claimed in this epoch.
        BlockClaim[] blocks;
    }

    /// @notice One block of a `SessionClaim`; with the voucher it makes the leaf.
    struct BlockClaim {
        /// Index of the block within the session.
        uint32 blockIndex;
        /// Wei billed for the block.
        uint256 amount;
        /// The leaf's `probeSummaryHash`.
        bytes32 probeSummaryHash;
        /// Sibling hashes from the leaf up to the epoch root.
        bytes32[] proof;
    }

    /// @notice A player's escrow.
    struct Player {
        /// Escrowed wei, including any amount being withdrawn.
        uint128 balance;
        /// Wei requested for withdrawal.
        uint128 withdrawing;
        /// When the requested amount may be withdrawn.
        uint64 unlockAt;
    }

    /// @notice One committed epoch.
    struct Epoch {
        /// Merkle root over the epoch's leaves.
        bytes32 root;
        /// Block timestamp of the commit; the challenge window starts here.
        uint64 committedAt;
        /// Number of leaves under the root.
        uint32 leafCount;
        /// Sum of the leaves' amounts; claims never pay out more.
        uint128 totalAmount;
        /// Wei paid out by claims so far.
        uint128 claimedAmount;
    }

    /// @notice Why a block was disputed.
    enum DisputeKind {
        /// The leaf is outside what its voucher allows.
        BeyondVoucher,
        /// An observer's signed probe summary puts the block below the billed amount.
        ProbeSummary
    }

    /// @notice Seconds after a commit during which its blocks can be disputed and not claimed.
    uint64 public immutable challengeWindow;
    /// @notice Seconds between a player's withdrawal request and the withdrawal.
    uint64 public immutable withdrawalDelay;
    /// @notice Player escrow by address.
    mapping(address player => Player) public players;
    /// @notice Committed epochs, by id.
    Epoch[] public epochs;

    /// @dev Settled (claimed or disputed) blocks: session id => block index / 256 => bits.
    mapping(bytes32 sessionId => mapping(uint256 word => uint256 bits)) private _settled;

    /// @notice A player added to its escrow.
    event Deposited(address indexed player, uint256 amount, uint256 balance);
    /// @notice A player asked to withdraw `amount`, available at `unlockAt`.
    event WithdrawalRequested(address indexed player, uint256 amount, uint64 unlockAt);
    /// @notice A player withdrew from its escrow.
    event Withdrawn(address indexed player, uint256 amount);
    /// @notice The operator committed an epoch root.
    event EpochCommitted(uint256 indexed epochId, bytes32 root, uint32 leafCount, uint128 totalAmount);
    /// @notice A host was paid for `blocks` blocks of an epoch.
    event Claimed(uint256 indexed epochId, address indexed host, uint256 blocks, uint256 amount);
    /// @notice A block was disputed successfully: it will not be paid, and the host was slashed.
    event Disputed(
        uint256 indexed epochId,
        bytes32 indexed sessionId,
        uint32 blockIndex,
        address indexed host,
        address player,
        uint256 amount,
        uint256 slashed,
        DisputeKind kind
    );

    /// @notice The amount is zero or more than the escrow holds.
    error InvalidAmount(uint256 amount, uint256 balance);
    /// @notice No withdrawal was requested, or its delay has not passed.
    error WithdrawalLocked(uint64 unlockAt);
    /// @notice An epoch root must not be zero.
    error EmptyRoot();
    /// @notice No epoch has this id.
    error UnknownEpoch(uint256 epochId);
    /// @notice Claims open when the challenge window closes.
    error ChallengeWindowOpen(uint64 closesAt);
    /// @notice Disputes close when the challenge window closes.
    error ChallengeWindowClosed(uint64 closedAt);
    /// @notice The voucher names another host.
    error WrongHost(address voucherHost);
    /// @notice The epoch was committed after the voucher expired.
    error VoucherExpired(uint64 expiry);
    /// @notice The block index is not below the voucher's `maxBlocks`.
    error BlockBeyondVoucher(uint32 blockIndex, uint32 maxBlocks);
    /// @notice The amount is above the voucher's price per block.
    error AmountAbovePrice(uint256 amount, uint256 pricePerBlock);
    /// @notice The leaf is not under the epoch root.
    error InvalidProof(bytes32 sessionId, uint32 blockIndex);
    /// @notice The block was already claimed or disputed.
    error BlockAlreadySettled(bytes32 sessionId, uint32 blockIndex);
    /// @notice The player's escrow cannot pay the session's blocks.
    error InsufficientEscrow(address player, uint256 balance, uint256 needed);
    /// @notice Claims would pay out more than the epoch's committed total.
    error EpochTotalExceeded(uint256 claimed, uint256 totalAmount);
    /// @notice The voucher is not the leaf's: another session id or another signer.
    error VoucherMismatch();
    /// @notice The leaf is within what its voucher allows: nothing to dispute.
    error LeafWithinVoucher();
    /// @notice The probe summary is for another session or block.
    error SummaryMismatch();
    /// @notice The probe summary's signer is neither the session key nor a checker.
    error UnauthorisedObserver(address signer);
    /// @notice The probe summary does not put the block below the billed amount.
    error SummaryAgreesWithLeaf(uint256 summaryAmount, uint256 leafAmount);

    /// @notice Deploys the settlement contract.
    /// @param operator_ The broker's settlement key: commits epochs, names checkers.
    /// @param challengeWindow_ Seconds after a commit for disputes, before claims.
    /// @param unbondingPeriod_ Seconds a host waits to withdraw its bond; at least the window.
    /// @param withdrawalDelay_ Seconds a player waits to withdraw escrow; at least the window.
    /// @param minBond_ Smallest host bond in wei; not zero.
    /// @param slashAmount_ Wei slashed per successful dispute.
    constructor(
        address operator_,
        uint64 challengeWindow_,
        uint64 unbondingPeriod_,
        uint64 withdrawalDelay_,
        uint128 minBond_,
        uint128 slashAmount_
    ) EIP712("Gridplay", "1") GridplayBonds(operator_, unbondingPeriod_, minBond_, slashAmount_) {
        if (unbondingPeriod_ < challengeWindow_ || withdrawalDelay_ < challengeWindow_) revert InvalidConfig();
        challengeWindow = challengeWindow_;
        withdrawalDelay = withdrawalDelay_;
    }


    // ---------------------------------------------------------------- players

    /// @notice Adds `msg.value` to the sender's escrow.
    function deposit() external payable {
        Player storage p = players[msg.sender];
        uint256 balance = p.balance + msg.value;
        p.balance = uint128(balance);
        emit Deposited(msg.sender, msg.value, balance);
    }

    /// @notice Asks to withdraw `amount` after `withdrawalDelay`; replaces any earlier request.
    /// @dev Claims may still draw on the amount until it is withdrawn.
    function requestWithdrawal(uint256 amount) external {
        Player storage p = players[msg.sender];
        if (amount == 0 || amount > p.balance) revert InvalidAmount(amount, p.balance);
        uint64 at = uint64(block.timestamp) + withdrawalDelay;
        p.withdrawing = uint128(amount);
        p.unlockAt = at;
        emit WithdrawalRequested(msg.sender, amount, at);
    }

    /// @notice Pays out the requested withdrawal (less whatever claims took meanwhile).
    function withdraw() external nonReentrant {
        Player storage p = players[msg.sender];
        uint64 at = p.unlockAt;
        if (p.withdrawing == 0 || block.timestamp < at) revert WithdrawalLocked(at);
        uint128 amount = p.withdrawing < p.balance ? p.withdrawing : p.balance;
        p.balance -= amount;
        p.withdrawing = 0;
        p.unlockAt = 0;
        emit Withdrawn(msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    // ---------------------------------------------------------------- operator

    /// @notice Commits the Merkle root over every billed block of an epoch.
    /// @param root Root of the sorted-pair keccak tree over `GridplayTypes.hashLeaf` leaves.
    /// @param leafCount Number of leaves under the root.
    /// @param totalAmount Sum of the leaves' amounts; claims on the epoch never exceed it.
    /// @return epochId The new epoch's id (epochs are numbered from 0).
    function commitEpoch(bytes32 root, uint32 leafCount, uint128 totalAmount)
        external
        onlyOperator
        returns (uint256 epochId)
    {
        if (root == bytes32(0)) revert EmptyRoot();
        epochId = epochs.length;
        epochs.push(Epoch(root, uint64(block.timestamp), leafCount, totalAmount, 0));
        emit EpochCommitted(epochId, root, leafCount, totalAmount);
    }

    // ---------------------------------------------------------------- claims

    /// @notice Pays `host` for blocks of epoch `epochId` from their players' escrow.
    /// @dev Callable by anyone once the challenge window has closed; the money goes to `host`.
    /// Each session's voucher is checked once: signed by the leaf's player, naming `host`, not
    /// expired at the commit, and every block within `maxBlocks` and `pricePerBlock`. Reverts
    /// as a whole if any block fails.
    /// @param epochId The epoch the blocks were committed in.
    /// @param host The host all the sessions' vouchers name.
    /// @param sessions The sessions, each with its voucher, signature and blocks.
    /// @return paid Wei sent to `host`.
    function claim(uint256 epochId, address host, SessionClaim[] calldata sessions)
        external
        nonReentrant
        returns (uint256 paid)
    {
        Epoch storage epoch = _epoch(epochId);
        uint64 closesAt = epoch.committedAt + challengeWindow;
        if (block.timestamp < closesAt) revert ChallengeWindowOpen(closesAt);
        uint256 count;
        for (uint256 i; i < sessions.length; ++i) {
            paid += _claimSession(epoch, host, sessions[i]);
            count += sessions[i].blocks.length;
        }
        uint256 claimed = epoch.claimedAmount + paid;
        if (claimed > epoch.totalAmount) revert EpochTotalExceeded(claimed, epoch.totalAmount);
        epoch.claimedAmount = uint128(claimed);
        emit Claimed(epochId, host, count, paid);
        Address.sendValue(payable(host), paid);
    }

    // ---------------------------------------------------------------- disputes

    /// @notice Disputes a leaf that its own voucher does not allow: another host, a block index
    /// at or past `maxBlocks`, an amount above `pricePerBlock`, or an epoch committed after
    /// `expiry`. The block is never paid (the player keeps the money) and `leaf.host` is slashed.
    /// @param epochId The epoch the leaf was committed in; its challenge window must be open.
    /// @param leaf The disputed leaf.
    /// @param proof The leaf's Merkle proof under the epoch root.
    /// @param voucher The voucher whose digest is `leaf.sessionId`.
    /// @param voucherSignature `leaf.player`'s signature over `voucher`.
    function disputeBeyondVoucher(
        uint256 epochId,
        T.Leaf calldata leaf,
        bytes32[] calldata proof,
        T.Voucher calldata voucher,
        bytes calldata voucherSignature
    ) external {
        uint64 committedAt = _checkDisputable(epochId, leaf, proof);
        _bindVoucher(leaf, voucher, voucherSignature);
        bool beyond = leaf.host != voucher.host || leaf.blockIndex >= voucher.maxBlocks
            || leaf.amount > voucher.pricePerBlock || committedAt > voucher.expiry;
        if (!beyond) revert LeafWithinVoucher();
        _uphold(epochId, leaf, DisputeKind.BeyondVoucher);
    }

    /// @notice Disputes a leaf with a probe summary of the same block, signed (EIP-712) by the
    /// voucher's session key or by a registered checker, whose amount is below the leaf's.
    /// The block is never paid (the player keeps the money) and `leaf.host` is slashed.
    /// @param epochId The epoch the leaf was committed in; its challenge window must be open.
    /// @param leaf The disputed leaf.
    /// @param proof The leaf's Merkle proof under the epoch root.
    /// @param voucher The voucher whose digest is `leaf.sessionId` (it names the session key).
    /// @param voucherSignature `leaf.player`'s signature over `voucher`.
    /// @param summary The observer's summary of the block.
    /// @param summarySignature The observer's signature over `summary`.
    function disputeProbeSummary(
        uint256 epochId,
        T.Leaf calldata leaf,
        bytes32[] calldata proof,
        T.Voucher calldata voucher,
        bytes calldata voucherSignature,
        T.ProbeSummary calldata summary,
        bytes calldata summarySignature
    ) external {
        _checkDisputable(epochId, leaf, proof);
        _bindVoucher(leaf, voucher, voucherSignature);
        if (summary.sessionId != leaf.sessionId || summary.blockIndex != leaf.blockIndex) revert SummaryMismatch();
        address signer =
            ECDSA.recoverCalldata(_hashTypedDataV4(T.hashProbeSummary(summary)), summarySignature);
        if (signer != voucher.sessionKey && !isChecker[signer]) revert UnauthorisedObserver(signer);
        if (summary.amount >= leaf.amount) revert SummaryAgreesWithLeaf(summary.amount, leaf.amount);
        _uphold(epochId, leaf, DisputeKind.ProbeSummary);
    }

    // ---------------------------------------------------------------- views

    /// @notice The on-chain session id of a voucher: its EIP-712 digest under this contract's
    /// domain (name "Gridplay", version "1"). The player signs exactly this digest.
    function sessionIdOf(T.Voucher calldata voucher) external view returns (bytes32) {
        return _hashTypedDataV4(T.hashVoucher(voucher));
    }

    /// @notice The EIP-712 digest an observer signs for `summary`.
    function probeSummaryDigest(T.ProbeSummary calldata summary) external view returns (bytes32) {
        return _hashTypedDataV4(T.hashProbeSummary(summary));
    }

    /// @notice The struct hash of `summary`, as a leaf's `probeSummaryHash` holds it.
    function probeSummaryHash(T.ProbeSummary calldata summary) external pure returns (bytes32) {
        return T.hashProbeSummary(summary);
    }

    /// @notice A leaf's hash as the epoch tree holds it (see `GridplayTypes.hashLeaf`).
    function leafHash(T.Leaf calldata leaf) external pure returns (bytes32) {
        return T.hashLeaf(leaf.sessionId, leaf.blockIndex, leaf.player, leaf.host, leaf.amount, leaf.probeSummaryHash);
    }

    /// @notice Whether a session's block was already claimed or disputed.
    function isSettled(bytes32 sessionId, uint32 blockIndex) external view returns (bool) {
        return _settled[sessionId][blockIndex >> 8] & (1 << (blockIndex & 0xff)) != 0;
    }

    /// @notice Number of committed epochs; the next commit gets this id.
    function epochCount() external view returns (uint256) {
        return epochs.length;
    }

    /// @notice The EIP-712 domain separator that vouchers and probe summaries are signed under.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- internals

    function _epoch(uint256 epochId) private view returns (Epoch storage) {
        if (epochId >= epochs.length) revert UnknownEpoch(epochId);
        return epochs[epochId];
    }

    /// @dev The session id and the player (the signer) of a voucher.
    function _openVoucher(T.Voucher calldata voucher, bytes calldata signature)
        private
        view
        returns (bytes32 sessionId, address player)
    {
        sessionId = _hashTypedDataV4(T.hashVoucher(voucher));
        player = ECDSA.recoverCalldata(sessionId, signature);
    }

    /// @dev Settles one session's blocks of `epoch` for `host` and debits the player; returns
    /// the amount owed to the host.
    function _claimSession(Epoch storage epoch, address host, SessionClaim calldata s)
        private
        returns (uint256 owed)
    {
        T.Voucher calldata v = s.voucher;
        (bytes32 sessionId, address player) = _openVoucher(v, s.signature);
        if (v.host != host) revert WrongHost(v.host);
        if (epoch.committedAt > v.expiry) revert VoucherExpired(v.expiry);
        bytes32 root = epoch.root;
        for (uint256 j; j < s.blocks.length; ++j) {
            BlockClaim calldata b = s.blocks[j];
            if (b.blockIndex >= v.maxBlocks) revert BlockBeyondVoucher(b.blockIndex, v.maxBlocks);
            if (b.amount > v.pricePerBlock) revert AmountAbovePrice(b.amount, v.pricePerBlock);
            bytes32 leaf = T.hashLeaf(sessionId, b.blockIndex, player, host, b.amount, b.probeSummaryHash);
            if (!MerkleProof.verifyCalldata(b.proof, root, leaf)) revert InvalidProof(sessionId, b.blockIndex);
            _settle(sessionId, b.blockIndex);
            owed += b.amount;
        }
        Player storage p = players[player];
        if (owed > p.balance) revert InsufficientEscrow(player, p.balance, owed);
        p.balance -= uint128(owed);
    }

    /// @dev Reverts unless `voucher` is the one `leaf.player` signed for `leaf.sessionId`.
    function _bindVoucher(T.Leaf calldata leaf, T.Voucher calldata voucher, bytes calldata signature) private view {
        (bytes32 sessionId, address player) = _openVoucher(voucher, signature);
        if (sessionId != leaf.sessionId || player != leaf.player) revert VoucherMismatch();
    }

    /// @dev Reverts unless the epoch's window is open and `leaf` is under its root; returns
    /// the commit time.
    function _checkDisputable(uint256 epochId, T.Leaf calldata leaf, bytes32[] calldata proof)
        private
        view
        returns (uint64 committedAt)
    {
        Epoch storage epoch = _epoch(epochId);
        committedAt = epoch.committedAt;
        uint64 closesAt = committedAt + challengeWindow;
        if (block.timestamp >= closesAt) revert ChallengeWindowClosed(closesAt);
        bytes32 hash =
            T.hashLeaf(leaf.sessionId, leaf.blockIndex, leaf.player, leaf.host, leaf.amount, leaf.probeSummaryHash);
        if (!MerkleProof.verifyCalldata(proof, epoch.root, hash)) revert InvalidProof(leaf.sessionId, leaf.blockIndex);
    }

    /// @dev Marks a block settled; reverts if it already was.
    function _settle(bytes32 sessionId, uint32 blockIndex) private {
        uint256 bit = 1 << (blockIndex & 0xff);
        mapping(uint256 => uint256) storage words = _settled[sessionId];
        uint256 bits = words[blockIndex >> 8];
        if (bits & bit != 0) revert BlockAlreadySettled(sessionId, blockIndex);
        words[blockIndex >> 8] = bits | bit;
    }

    /// @dev Settles a disputed block unpaid and slashes its host.
    function _uphold(uint256 epochId, T.Leaf calldata leaf, DisputeKind kind) private {
        _settle(leaf.sessionId, leaf.blockIndex);
        uint128 slashed = _slashHost(leaf.host);
        emit Disputed(epochId, leaf.sessionId, leaf.blockIndex, leaf.host, leaf.player, leaf.amount, slashed, kind);
    }
}
