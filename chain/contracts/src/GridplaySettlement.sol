// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {GridplayTypes as T} from "./GridplayTypes.sol";
import {GridplayBonds} from "./GridplayBonds.sol";

/// @title Gridplay settlement: constant gas per epoch, fraud proofs over running sums
/// @notice Sessions are billed in 15-minute blocks, in native currency (wei), from a shared
/// pool of player deposits. Nothing is sent per session or per player: each epoch the operator
/// commits one root over three sorted sections of one positional Merkle tree,
/// - blocks: every billed block, sorted by (player, session, block), each carrying the
///   player's running spend within the epoch and the epoch's running total;
/// - hosts: each host's total for the epoch, sorted by host, with a running total;
/// - players: every player's cumulative spend since the pool began, sorted by player;
/// and each host claims its total once per epoch. A player's deposit is debited lazily: its
/// cumulative spend is recorded (`recordSpend`) when it matters, at the latest while the
/// player's withdrawal waits out `withdrawalDelay`.
///
/// The commit is optimistic. Within `challengeWindow` anyone may void an epoch by proving a
/// fault with a few leaves: two neighbours out of order or whose running sums do not add up, a
/// section whose first or last running sum is wrong, a player's cumulative spend that is not
/// the previous epoch's plus this one's, a host total below the host's own blocks. A voided
/// epoch pays nothing, the epoch after a voided one can be voided too, and the operator's whole
/// bond is burned. A block's voucher is off-chain: anyone may challenge a block with a bond,
/// and the operator must answer with the player's signed voucher or the epoch is voided. A
/// single block can also be refunded (its player credited, its host's total reduced, its host
/// slashed) when it breaks its voucher, when a signed probe summary bills it lower, or when it
/// was already billed in another epoch.
contract GridplaySettlement is EIP712, GridplayBonds {
    /// @notice A billed block, a leaf of the blocks section.
    struct BlockLeaf {
        /// On-chain session id (the voucher's EIP-712 digest under this contract).
        bytes32 sessionId;
        /// Index of the 15-minute block within the session, from 0.
        uint32 blockIndex;
        /// The payer: the voucher's signer.
        address player;
        /// The payee: the voucher's host.
        address host;
        /// Wei billed for the block.
        uint256 amount;
        /// `GridplayTypes.hashProbeSummary` of the summary the block was billed on.
        bytes32 probeSummaryHash;
        /// The player's spend in this epoch up to and including this block.
        uint256 playerRunning;
        /// The epoch's total up to and including this block.
        uint256 epochRunning;
    }

    /// @notice A host's total for the epoch, a leaf of the hosts section.
    struct HostLeaf {
        /// The host paid.
        address host;
        /// Wei the host earned in the epoch.
        uint256 amount;
        /// Sum of the section's amounts up to and including this leaf.
        uint256 running;
    }

    /// @notice A player's cumulative spend, a leaf of the players section.
    struct PlayerLeaf {
        /// The player.
        address player;
        /// Wei the player has spent since the pool began, through this epoch.
        uint256 cumulative;
    }

    /// @notice A block leaf at its position, with its proof.
    struct BlockAt {
        /// Position in the tree.
        uint32 index;
        /// The leaf.
        BlockLeaf leaf;
        /// Sibling hashes from the leaf up to the root.
        bytes32[] proof;
    }

    /// @notice A host leaf at its position, with its proof.
    struct HostAt {
        /// Position in the tree.
        uint32 index;
        /// The leaf.
        HostLeaf leaf;
        /// Sibling hashes from the leaf up to the root.
        bytes32[] proof;
    }

    /// @notice A player leaf at its position, with its proof.
    struct PlayerAt {
        /// Position in the tree.
        uint32 index;
        /// The leaf.
        PlayerLeaf leaf;
        /// Sibling hashes from the leaf up to the root.
        bytes32[] proof;
    }

    /// @notice One epoch of a host's claim.
    struct HostClaim {
        /// The epoch.
        uint32 epochId;
        /// The host's leaf in it.
        HostAt at;
    }

    /// @notice Where an epoch stands.
    enum EpochState {
        /// Committed; faults and disputes may still be proven, nothing paid.
        Pending,
        /// The window closed with no open challenge and the previous epoch final: claims open.
        Final,
        /// A fault was proven: the epoch pays nothing.
        Void
    }

    /// @notice One committed epoch.
    struct Epoch {
        /// Root of the positional tree over blocks, then hosts, then players.
        bytes32 root;
        /// Block timestamp of the commit; the challenge window starts here.
        uint64 committedAt;
        /// Leaves in the blocks section (positions 0 ..).
        uint32 blocks;
        /// Leaves in the hosts section (right after the blocks).
        uint32 hostCount;
        /// Leaves in the players section (right after the hosts).
        uint32 playerCount;
        /// Voucher challenges not yet answered.
        uint32 openChallenges;
        /// Where the epoch stands.
        EpochState state;
        /// Sum of the blocks' amounts; host claims never pay out more.
        uint128 total;
        /// Wei paid to hosts so far.
        uint128 paid;
    }

    /// @notice A player's account in the pool.
    struct Player {
        /// Wei deposited, ever.
        uint128 deposited;
        /// Wei withdrawn, ever.
        uint128 withdrawn;
        /// Cumulative spend as last recorded.
        uint128 spent;
        /// Wei refunded by upheld disputes, ever.
        uint128 refunded;
        /// Wei requested for withdrawal.
        uint128 withdrawing;
        /// When the requested amount may be withdrawn.
        uint64 unlockAt;
        /// The epoch `spent` was recorded from, plus one; 0 before any.
        uint32 spentThrough;
    }

    /// @notice A voucher challenge.
    struct Challenge {
        /// The challenged block's epoch.
        uint32 epochId;
        /// When the epoch may be voided if no answer came.
        uint64 deadline;
        /// Who posted the bond; zero once answered or resolved.
        address challenger;
        /// Hash of the challenged leaf.
        bytes32 leafHash;
    }

    /// @notice Faults that void an epoch.
    enum Fault {
        /// Two neighbouring blocks out of order or with running sums that do not add up.
        Blocks,
        /// The first block's running sums are not its amount, or the last's is not the total.
        BlocksEdge,
        /// Two neighbouring hosts out of order or with a running total that does not add up.
        Hosts,
        /// The first host's running total is not its amount, or the last's is not the total.
        HostsEdge,
        /// Two neighbouring players out of order.
        Players,
        /// A player's cumulative spend is not the previous epoch's plus this epoch's.
        PlayerSpend,
        /// A host's total is below the sum of its own blocks.
        HostShort,
        /// A voucher challenge went unanswered.
        Unanswered,
        /// The previous epoch was voided.
        AfterVoid
    }

    /// @notice Why a single block was refunded.
    enum Refund {
        /// The leaf is outside what its voucher allows.
        BeyondVoucher,
        /// An observer's signed probe summary puts the block below the billed amount.
        ProbeSummary,
        /// The same session's block was billed in another leaf.
        Duplicate
    }

    /// @dev Leaf kinds, hashed into every leaf so no leaf of one section passes for another.
    uint8 private constant BLOCK_LEAF = 1;
    uint8 private constant HOST_LEAF = 2;
    uint8 private constant PLAYER_LEAF = 3;

    /// @notice Seconds after a commit during which faults and disputes can be proven.
    uint64 public immutable challengeWindow;
    /// @notice Seconds between a player's withdrawal request and the withdrawal.
    uint64 public immutable withdrawalDelay;
    /// @notice Wei a voucher challenge must carry; the answerer keeps it.
    uint128 public immutable challengeBond;

    /// @notice The operator's bond, burned whole when one of its epochs is voided.
    uint256 public operatorBond;
    /// @notice Committed epochs, by id.
    Epoch[] public epochs;
    /// @notice Player accounts by address.
    mapping(address player => Player) public players;
    /// @notice Voucher challenges, by id.
    Challenge[] public challenges;
    /// @notice Wei refunded from each host's total in each epoch.
    mapping(uint256 epochId => mapping(address host => uint256)) public refundedFromHost;

    /// @dev Hosts paid: host => epoch id / 256 => bits.
    mapping(address host => mapping(uint256 word => uint256 bits)) private _paid;
    /// @dev Refunded leaves: keccak256(epoch id, leaf hash) => refunded.
    mapping(bytes32 => bool) private _refunded;

    /// @notice The operator added to its bond.
    event OperatorBonded(uint256 amount, uint256 bond);
    /// @notice A player added to its deposit.
    event Deposited(address indexed player, uint256 amount);
    /// @notice A player asked to withdraw `amount`, available at `unlockAt`.
    event WithdrawalRequested(address indexed player, uint256 amount, uint64 unlockAt);
    /// @notice A player withdrew.
    event Withdrawn(address indexed player, uint256 amount);
    /// @notice A player's cumulative spend was recorded from a final epoch.
    event SpendRecorded(address indexed player, uint256 indexed epochId, uint256 cumulative);
    /// @notice The operator committed an epoch.
    event EpochCommitted(
        uint256 indexed epochId, bytes32 root, uint32 blocks, uint32 hostCount, uint32 playerCount, uint128 total
    );
    /// @notice An epoch's window closed unchallenged: its hosts can be paid.
    event EpochFinal(uint256 indexed epochId);
    /// @notice A fault was proven: the epoch pays nothing and the operator's bond was burned.
    event EpochVoided(uint256 indexed epochId, Fault fault, address prover, uint256 burned);
    /// @notice A host was paid its total for an epoch, less refunds.
    event HostPaid(uint256 indexed epochId, address indexed host, uint256 amount);
    /// @notice A single block was refunded to its player and its host slashed.
    event BlockRefunded(
        uint256 indexed epochId, bytes32 indexed sessionId, uint32 blockIndex, address indexed host, uint256 amount, Refund why
    );
    /// @notice A block's voucher was challenged.
    event VoucherChallenged(uint256 indexed challengeId, uint256 indexed epochId, bytes32 sessionId, uint32 blockIndex);
    /// @notice A challenge was answered with the voucher.
    event VoucherShown(uint256 indexed challengeId, T.Voucher voucher, bytes signature);

    /// @notice The value is zero or above what the account allows.
    error InvalidAmount(uint256 amount, uint256 available);
    /// @notice No withdrawal was requested, or its delay has not passed.
    error WithdrawalLocked(uint64 unlockAt);
    /// @notice The operator's bond is below `minBond`: it may not commit.
    error OperatorNotBonded(uint256 bond);
    /// @notice The operator's bond is locked while one of its epochs is pending.
    error OperatorBondLocked();
    /// @notice The commit is malformed (zero root, no leaves, a total without blocks or hosts).
    error InvalidCommit();
    /// @notice No epoch has this id.
    error UnknownEpoch(uint256 epochId);
    /// @notice The epoch is not pending, or its challenge window has closed.
    error NotChallengeable(uint256 epochId);
    /// @notice The epoch is not final yet (window open, challenge open, previous not final) or void.
    error NotFinal(uint256 epochId);
    /// @notice A leaf is not at that position under the epoch's root, or not in that section.
    error InvalidProof(uint256 epochId, uint256 index);
    /// @notice The leaves given do not show a value for the key (not neighbours, wrong bracket).
    error InvalidLookup();
    /// @notice The evidence shows no fault.
    error NoFault();
    /// @notice The host's total for this epoch was already paid.
    error AlreadyPaid(uint256 epochId, address host);
    /// @notice Claims would pay out more than the epoch's total.
    error EpochTotalExceeded(uint256 paid, uint256 total);
    /// @notice This spend is from an epoch no later than the one already recorded.
    error StaleSpend(uint256 epochId, uint256 recordedThrough);
    /// @notice The leaf was already refunded.
    error AlreadyRefunded();
    /// @notice The voucher is not the leaf's: another session id or another signer.
    error VoucherMismatch();
    /// @notice The leaf is within what its voucher allows.
    error LeafWithinVoucher();
    /// @notice The probe summary is for another session or block.
    error SummaryMismatch();
    /// @notice The probe summary's signer is neither the session key nor a checker.
    error UnauthorisedObserver(address signer);
    /// @notice The probe summary does not put the block below the billed amount.
    error SummaryAgreesWithLeaf(uint256 summaryAmount, uint256 leafAmount);
    /// @notice The two leaves are not the same session's block, or are the same leaf.
    error NotDuplicate();
    /// @notice A challenge must carry exactly `challengeBond`.
    error WrongChallengeBond(uint256 sent, uint256 bond);
    /// @notice The challenge was already answered or resolved, or its deadline has not passed.
    error ChallengeClosed(uint256 challengeId);

    /// @notice Deploys the settlement contract.
    /// @param operator_ The broker's settlement key: commits epochs, names checkers.
    /// @param challengeWindow_ Seconds after a commit for faults and disputes, before claims.
    /// @param unbondingPeriod_ Seconds a host waits to withdraw its bond; at least the window.
    /// @param withdrawalDelay_ Seconds a player waits to withdraw; at least twice the window, so
    /// that the epochs it played in can become final and its spend be recorded meanwhile.
    /// @param minBond_ Smallest host (and operator) bond in wei; not zero.
    /// @param slashAmount_ Wei slashed from a host per refunded block.
    /// @param challengeBond_ Wei a voucher challenge carries.
    constructor(
        address operator_,
        uint64 challengeWindow_,
        uint64 unbondingPeriod_,
        uint64 withdrawalDelay_,
        uint128 minBond_,
        uint128 slashAmount_,
        uint128 challengeBond_
    ) EIP712("Gridplay", "1") GridplayBonds(operator_, unbondingPeriod_, minBond_, slashAmount_) {
        if (unbondingPeriod_ < challengeWindow_ || withdrawalDelay_ < 2 * uint256(challengeWindow_)) {
            revert InvalidConfig();
        }
        challengeWindow = challengeWindow_;
        withdrawalDelay = withdrawalDelay_;
        challengeBond = challengeBond_;
    }

    // ---------------------------------------------------------------- operator

    /// @notice Adds `msg.value` to the operator's bond.
    function bondOperator() external payable onlyOperator {
        operatorBond += msg.value;
        emit OperatorBonded(msg.value, operatorBond);
    }

    /// @notice Returns the operator's bond once its last epoch is no longer pending.
    function withdrawOperatorBond() external onlyOperator nonReentrant {
        uint256 n = epochs.length;
        if (n > 0 && epochs[n - 1].state == EpochState.Pending) revert OperatorBondLocked();
        uint256 bond = operatorBond;
        operatorBond = 0;
        Address.sendValue(payable(operator), bond);
    }

    /// @notice Commits one epoch: the root over its blocks, hosts and players sections.
    /// @return epochId The new epoch's id (epochs are numbered from 0).
    function commitEpoch(bytes32 root, uint32 blocks, uint32 hostCount, uint32 playerCount, uint128 total)
        external
        onlyOperator
        returns (uint256 epochId)
    {
        if (operatorBond < minBond) revert OperatorNotBonded(operatorBond);
        uint256 leaves = uint256(blocks) + hostCount + playerCount;
        if (root == bytes32(0) || leaves == 0 || leaves > type(uint32).max || (total != 0 && (blocks == 0 || hostCount == 0))) {
            revert InvalidCommit();
        }
        epochId = epochs.length;
        epochs.push(Epoch(root, uint64(block.timestamp), blocks, hostCount, playerCount, 0, EpochState.Pending, total, 0));
        emit EpochCommitted(epochId, root, blocks, hostCount, playerCount, total);
    }

    // ---------------------------------------------------------------- players

    /// @notice Adds `msg.value` to the sender's deposit.
    function deposit() external payable {
        if (msg.value > type(uint128).max) revert InvalidAmount(msg.value, type(uint128).max);
        players[msg.sender].deposited += uint128(msg.value);
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Asks to withdraw `amount` after `withdrawalDelay`; replaces any earlier request.
    function requestWithdrawal(uint256 amount) external {
        uint256 free = available(msg.sender);
        if (amount == 0 || amount > free) revert InvalidAmount(amount, free);
        uint64 at = uint64(block.timestamp) + withdrawalDelay;
        Player storage p = players[msg.sender];
        p.withdrawing = uint128(amount);
        p.unlockAt = at;
        emit WithdrawalRequested(msg.sender, amount, at);
    }

    /// @notice Pays out the requested withdrawal, less whatever spend was recorded meanwhile.
    function withdraw() external nonReentrant {
        Player storage p = players[msg.sender];
        uint64 at = p.unlockAt;
        if (p.withdrawing == 0 || block.timestamp < at) revert WithdrawalLocked(at);
        uint256 free = available(msg.sender);
        uint128 amount = uint128(p.withdrawing < free ? p.withdrawing : free);
        p.withdrawn += amount;
        p.withdrawing = 0;
        p.unlockAt = 0;
        emit Withdrawn(msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    /// @notice Records `player`'s cumulative spend from its leaf in final epoch `epochId`; anyone
    /// may call it (the operator does while a withdrawal waits).
    function recordSpend(address player, uint256 epochId, PlayerAt calldata at) external {
        Epoch storage e = _final(epochId);
        uint256 first = uint256(e.blocks) + e.hostCount;
        _verify(epochId, e, first, first + e.playerCount, at.index, _playerHash(at.leaf), at.proof);
        if (at.leaf.player != player) revert InvalidLookup();
        if (at.leaf.cumulative > type(uint128).max) revert InvalidAmount(at.leaf.cumulative, type(uint128).max);
        Player storage p = players[player];
        if (epochId + 1 <= p.spentThrough) revert StaleSpend(epochId, p.spentThrough);
        p.spent = uint128(at.leaf.cumulative);
        p.spentThrough = uint32(epochId + 1);
        emit SpendRecorded(player, epochId, at.leaf.cumulative);
    }

    /// @notice Wei `player` could withdraw now: deposits and refunds less withdrawals and the
    /// recorded spend.
    function available(address player) public view returns (uint256) {
        Player storage p = players[player];
        uint256 credit = uint256(p.deposited) + p.refunded;
        uint256 debit = uint256(p.withdrawn) + p.spent;
        return credit > debit ? credit - debit : 0;
    }

    // ---------------------------------------------------------------- hosts

    /// @notice Pays `host` its totals for final epochs, one leaf per epoch; anyone may call it.
    /// @return paid Wei sent to `host`.
    function claim(address host, HostClaim[] calldata claims) external nonReentrant returns (uint256 paid) {
        for (uint256 i; i < claims.length; ++i) {
            uint256 epochId = claims[i].epochId;
            HostAt calldata at = claims[i].at;
            Epoch storage e = _final(epochId);
            _verifyHost(epochId, e, at);
            if (at.leaf.host != host) revert InvalidLookup();
            uint256 bit = 1 << (epochId & 0xff);
            uint256 bits = _paid[host][epochId >> 8];
            if (bits & bit != 0) revert AlreadyPaid(epochId, host);
            _paid[host][epochId >> 8] = bits | bit;
            uint256 refunded = refundedFromHost[epochId][host];
            uint256 owed = at.leaf.amount > refunded ? at.leaf.amount - refunded : 0;
            uint256 total = e.paid + owed;
            if (total > e.total) revert EpochTotalExceeded(total, e.total);
            e.paid = uint128(total);
            paid += owed;
            emit HostPaid(epochId, host, owed);
        }
        Address.sendValue(payable(host), paid);
    }

    /// @notice Whether `host`'s total for `epochId` was paid.
    function isPaid(address host, uint256 epochId) external view returns (bool) {
        return _paid[host][epochId >> 8] & (1 << (epochId & 0xff)) != 0;
    }

    // ---------------------------------------------------------------- epoch life

    /// @notice Makes an epoch final once its window has closed with no open challenge and the
    /// epoch before it is final; claims do this themselves.
    function finalize(uint256 epochId) external {
        _final(epochId);
    }

    /// @notice Voids an epoch whose predecessor was voided (its cumulative spends build on it).
    function voidAfterVoid(uint256 epochId) external {
        Epoch storage e = _epoch(epochId);
        if (epochId == 0 || epochs[epochId - 1].state != EpochState.Void || e.state != EpochState.Pending) {
            revert NoFault();
        }
        _void(epochId, e, Fault.AfterVoid);
    }

    // ---------------------------------------------------------------- faults

    /// @notice Voids the epoch if blocks `a` and `b` are neighbours (b right after a) that are
    /// out of (player, session, block) order or whose running sums do not add up.
    function proveBlocksFault(uint256 epochId, BlockAt calldata a, BlockAt calldata b) external {
        Epoch storage e = _challengeable(epochId);
        _verifyBlock(epochId, e, a);
        _verifyBlock(epochId, e, b);
        if (b.index != a.index + 1) revert InvalidLookup();
        BlockLeaf calldata x = a.leaf;
        BlockLeaf calldata y = b.leaf;
        bool fault = _oversized(x) || _oversized(y) || !_blockBefore(x, y) || y.epochRunning != x.epochRunning + y.amount
            || y.playerRunning != (x.player == y.player ? x.playerRunning : 0) + y.amount;
        if (!fault) revert NoFault();
        _void(epochId, e, Fault.Blocks);
    }

    /// @notice Voids the epoch if the first block's running sums are not its amount, the last
    /// block's epoch running total is not the committed total, or a value is out of range.
    function proveBlocksEdgeFault(uint256 epochId, BlockAt calldata a) external {
        Epoch storage e = _challengeable(epochId);
        _verifyBlock(epochId, e, a);
        BlockLeaf calldata x = a.leaf;
        bool fault = _oversized(x) || (a.index == 0 && (x.playerRunning != x.amount || x.epochRunning != x.amount))
            || (a.index + 1 == e.blocks && x.epochRunning != e.total);
        if (!fault) revert NoFault();
        _void(epochId, e, Fault.BlocksEdge);
    }

    /// @notice Voids the epoch if hosts `a` and `b` are neighbours out of order or whose running
    /// total does not add up.
    function proveHostsFault(uint256 epochId, HostAt calldata a, HostAt calldata b) external {
        Epoch storage e = _challengeable(epochId);
        _verifyHost(epochId, e, a);
        _verifyHost(epochId, e, b);
        if (b.index != a.index + 1) revert InvalidLookup();
        bool fault = _oversized(a.leaf) || _oversized(b.leaf) || a.leaf.host >= b.leaf.host
            || b.leaf.running != a.leaf.running + b.leaf.amount;
        if (!fault) revert NoFault();
        _void(epochId, e, Fault.Hosts);
    }

    /// @notice Voids the epoch if the first host's running total is not its amount, the last
    /// host's is not the committed total, or a value is out of range.
    function proveHostsEdgeFault(uint256 epochId, HostAt calldata a) external {
        Epoch storage e = _challengeable(epochId);
        _verifyHost(epochId, e, a);
        uint256 first = e.blocks;
        bool fault = _oversized(a.leaf) || (a.index == first && a.leaf.running != a.leaf.amount)
            || (a.index + 1 == first + e.hostCount && a.leaf.running != e.total);
        if (!fault) revert NoFault();
        _void(epochId, e, Fault.HostsEdge);
    }

    /// @notice Voids the epoch if players `a` and `b` are neighbours out of order.
    function provePlayersFault(uint256 epochId, PlayerAt calldata a, PlayerAt calldata b) external {
        Epoch storage e = _challengeable(epochId);
        _verifyPlayer(epochId, e, a);
        _verifyPlayer(epochId, e, b);
        if (b.index != a.index + 1) revert InvalidLookup();
        if (a.leaf.player < b.leaf.player) revert NoFault();
        _void(epochId, e, Fault.Players);
    }

    /// @notice Voids the epoch if `player`'s cumulative spend in it is not its cumulative spend
    /// in the previous epoch plus its spend in this one. Each value is shown by the player's own
    /// leaf or, where it has none, by the leaves around where it would be (the value is then 0).
    /// @param prior The player in the previous epoch's players section (empty for epoch 0).
    /// @param spend The player's last block in this epoch (with the block after it, unless last).
    /// @param current The player in this epoch's players section.
    function provePlayerSpendFault(
        uint256 epochId,
        address player,
        PlayerAt[] calldata prior,
        BlockAt[] calldata spend,
        PlayerAt[] calldata current
    ) external {
        Epoch storage e = _challengeable(epochId);
        uint256 before = epochId == 0 ? _emptyLookup(prior) : _playerValue(epochId - 1, player, prior);
        uint256 spent = _spendValue(epochId, e, player, spend);
        uint256 now_ = _playerValue(epochId, player, current);
        uint256 limit = type(uint128).max;
        if (before <= limit && spent <= limit && now_ <= limit && now_ == before + spent) revert NoFault();
        _void(epochId, e, Fault.PlayerSpend);
    }

    /// @notice Voids the epoch if `host`'s total in it is below the sum of `blocks`, distinct
    /// blocks (strictly increasing positions) that all name `host`.
    /// @param total The host's leaf (or, without one, the leaves around where it would be).
    function proveHostShortFault(uint256 epochId, address host, HostAt[] calldata total, BlockAt[] calldata blocks)
        external
    {
        Epoch storage e = _challengeable(epochId);
        uint256 owed = _hostValue(epochId, e, host, total);
        uint256 sum;
        for (uint256 i; i < blocks.length; ++i) {
            BlockAt calldata b = blocks[i];
            _verifyBlock(epochId, e, b);
            // An out-of-range amount is a fault of its own (`proveBlocksEdgeFault`).
            if (b.leaf.host != host || (i > 0 && b.index <= blocks[i - 1].index) || _oversized(b.leaf)) {
                revert InvalidLookup();
            }
            sum += b.leaf.amount;
        }
        if (sum <= owed) revert NoFault();
        _void(epochId, e, Fault.HostShort);
    }

    // ---------------------------------------------------------------- voucher challenges

    /// @notice Challenges the operator to show block `a`'s voucher; carries `challengeBond`.
    /// Until answered the epoch cannot become final; unanswered by the deadline (one window
    /// from now) it can be voided and the bond comes back.
    function challengeVoucher(uint256 epochId, BlockAt calldata a) external payable returns (uint256 challengeId) {
        if (msg.value != challengeBond) revert WrongChallengeBond(msg.value, challengeBond);
        Epoch storage e = _challengeable(epochId);
        bytes32 hash = _verifyBlock(epochId, e, a);
        challengeId = challenges.length;
        challenges.push(Challenge(uint32(epochId), uint64(block.timestamp) + challengeWindow, msg.sender, hash));
        e.openChallenges += 1;
        emit VoucherChallenged(challengeId, epochId, a.leaf.sessionId, a.leaf.blockIndex);
    }

    /// @notice Answers a challenge with the voucher the leaf's player signed; the answerer gets
    /// the bond. If the voucher does not allow the leaf, the block is refunded at once.
    function answerChallenge(
        uint256 challengeId,
        BlockLeaf calldata leaf,
        T.Voucher calldata voucher,
        bytes calldata signature
    ) external nonReentrant {
        Challenge storage c = _openChallenge(challengeId);
        if (_blockHash(leaf) != c.leafHash) revert InvalidLookup();
        _bindVoucher(leaf, voucher, signature);
        uint256 epochId = c.epochId;
        Epoch storage e = epochs[epochId];
        c.challenger = address(0);
        e.openChallenges -= 1;
        emit VoucherShown(challengeId, voucher, signature);
        if (_beyondVoucher(e, leaf, voucher) && !_refunded[keccak256(abi.encode(epochId, c.leafHash))]) {
            _refund(epochId, leaf, Refund.BeyondVoucher);
        }
        Address.sendValue(payable(msg.sender), challengeBond);
    }

    /// @notice Voids the challenged epoch once the deadline has passed unanswered, and returns
    /// the bond to the challenger.
    function voidUnanswered(uint256 challengeId) external nonReentrant {
        Challenge storage c = _openChallenge(challengeId);
        if (block.timestamp < c.deadline) revert ChallengeClosed(challengeId);
        address challenger = c.challenger;
        uint256 epochId = c.epochId;
        Epoch storage e = epochs[epochId];
        c.challenger = address(0);
        e.openChallenges -= 1;
        if (e.state == EpochState.Pending) _void(epochId, e, Fault.Unanswered);
        Address.sendValue(payable(challenger), challengeBond);
    }

    // ---------------------------------------------------------------- single-block refunds

    /// @notice Refunds a block that its own voucher does not allow: another host, a block index
    /// at or past `maxBlocks`, an amount above `pricePerBlock`, or an epoch committed after
    /// `expiry`.
    function disputeBeyondVoucher(
        uint256 epochId,
        BlockAt calldata a,
        T.Voucher calldata voucher,
        bytes calldata voucherSignature
    ) external {
        Epoch storage e = _challengeable(epochId);
        _verifyBlock(epochId, e, a);
        _bindVoucher(a.leaf, voucher, voucherSignature);
        if (!_beyondVoucher(e, a.leaf, voucher)) revert LeafWithinVoucher();
        _refund(epochId, a.leaf, Refund.BeyondVoucher);
    }

    /// @notice Refunds a block with a probe summary of it, signed (EIP-712) by the voucher's
    /// session key or a registered checker, whose amount is below the leaf's.
    function disputeProbeSummary(
        uint256 epochId,
        BlockAt calldata a,
        T.Voucher calldata voucher,
        bytes calldata voucherSignature,
        T.ProbeSummary calldata summary,
        bytes calldata summarySignature
    ) external {
        Epoch storage e = _challengeable(epochId);
        _verifyBlock(epochId, e, a);
        _bindVoucher(a.leaf, voucher, voucherSignature);
        if (summary.sessionId != a.leaf.sessionId || summary.blockIndex != a.leaf.blockIndex) revert SummaryMismatch();
        address signer = ECDSA.recoverCalldata(_hashTypedDataV4(T.hashProbeSummary(summary)), summarySignature);
        if (signer != voucher.sessionKey && !isChecker[signer]) revert UnauthorisedObserver(signer);
        if (summary.amount >= a.leaf.amount) revert SummaryAgreesWithLeaf(summary.amount, a.leaf.amount);
        _refund(epochId, a.leaf, Refund.ProbeSummary);
    }

    /// @notice Refunds block `b` of pending epoch `epochB` when the same session's block is also
    /// leaf `a` of epoch `epochA` (not voided; it may be the same epoch at another position).
    function disputeDuplicate(uint256 epochA, BlockAt calldata a, uint256 epochB, BlockAt calldata b) external {
        Epoch storage eb = _challengeable(epochB);
        Epoch storage ea = _epoch(epochA);
        if (ea.state == EpochState.Void) revert NotDuplicate();
        _verifyBlock(epochA, ea, a);
        _verifyBlock(epochB, eb, b);
        if (
            a.leaf.sessionId != b.leaf.sessionId || a.leaf.blockIndex != b.leaf.blockIndex
                || (epochA == epochB && a.index == b.index)
        ) revert NotDuplicate();
        _refund(epochB, b.leaf, Refund.Duplicate);
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

    /// @notice A block leaf's hash as the tree holds it.
    function blockLeafHash(BlockLeaf calldata leaf) external pure returns (bytes32) {
        return _blockHash(leaf);
    }

    /// @notice A host leaf's hash as the tree holds it.
    function hostLeafHash(HostLeaf calldata leaf) external pure returns (bytes32) {
        return _hostHash(leaf);
    }

    /// @notice A player leaf's hash as the tree holds it.
    function playerLeafHash(PlayerLeaf calldata leaf) external pure returns (bytes32) {
        return _playerHash(leaf);
    }

    /// @notice Number of committed epochs; the next commit gets this id.
    function epochCount() external view returns (uint256) {
        return epochs.length;
    }

    /// @notice Number of voucher challenges raised; the next gets this id.
    function challengeCount() external view returns (uint256) {
        return challenges.length;
    }

    // ---------------------------------------------------------------- internals: epochs

    function _epoch(uint256 epochId) private view returns (Epoch storage) {
        if (epochId >= epochs.length) revert UnknownEpoch(epochId);
        return epochs[epochId];
    }

    /// @dev The epoch, if faults and disputes may still be proven against it.
    function _challengeable(uint256 epochId) private view returns (Epoch storage e) {
        e = _epoch(epochId);
        if (e.state != EpochState.Pending || block.timestamp >= e.committedAt + challengeWindow) {
            revert NotChallengeable(epochId);
        }
    }

    /// @dev The epoch, made final first if it may be; reverts unless final.
    function _final(uint256 epochId) private returns (Epoch storage e) {
        e = _epoch(epochId);
        if (e.state == EpochState.Final) return e;
        bool ready = e.state == EpochState.Pending && e.openChallenges == 0
            && block.timestamp >= e.committedAt + challengeWindow
            && (epochId == 0 || epochs[epochId - 1].state == EpochState.Final);
        if (!ready) revert NotFinal(epochId);
        e.state = EpochState.Final;
        emit EpochFinal(epochId);
    }

    function _void(uint256 epochId, Epoch storage e, Fault fault) private {
        e.state = EpochState.Void;
        uint256 burned = operatorBond;
        operatorBond = 0;
        slashedTotal += burned;
        emit EpochVoided(epochId, fault, msg.sender, burned);
    }

    function _openChallenge(uint256 challengeId) private view returns (Challenge storage c) {
        if (challengeId >= challenges.length) revert ChallengeClosed(challengeId);
        c = challenges[challengeId];
        if (c.challenger == address(0)) revert ChallengeClosed(challengeId);
    }

    // ---------------------------------------------------------------- internals: leaves

    function _blockHash(BlockLeaf calldata l) private pure returns (bytes32) {
        bytes memory fields = abi.encode(
            BLOCK_LEAF,
            l.sessionId,
            l.blockIndex,
            l.player,
            l.host,
            l.amount,
            l.probeSummaryHash,
            l.playerRunning,
            l.epochRunning
        );
        return keccak256(bytes.concat(keccak256(fields)));
    }

    function _hostHash(HostLeaf calldata l) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(HOST_LEAF, l.host, l.amount, l.running))));
    }

    function _playerHash(PlayerLeaf calldata l) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(PLAYER_LEAF, l.player, l.cumulative))));
    }

    /// @dev Whether a block's values leave the range running sums are checked in.
    function _oversized(BlockLeaf calldata l) private pure returns (bool) {
        uint256 limit = type(uint128).max;
        return l.amount > limit || l.playerRunning > limit || l.epochRunning > limit;
    }

    function _oversized(HostLeaf calldata l) private pure returns (bool) {
        uint256 limit = type(uint128).max;
        return l.amount > limit || l.running > limit;
    }

    /// @dev Strict (player, session, block) order.
    function _blockBefore(BlockLeaf calldata x, BlockLeaf calldata y) private pure returns (bool) {
        if (x.player != y.player) return x.player < y.player;
        if (x.sessionId != y.sessionId) return x.sessionId < y.sessionId;
        return x.blockIndex < y.blockIndex;
    }

    /// @dev Reverts unless `leaf` sits at `index`, inside [first, end), under the epoch's root.
    function _verify(
        uint256 epochId,
        Epoch storage e,
        uint256 first,
        uint256 end,
        uint256 index,
        bytes32 leaf,
        bytes32[] calldata proof
    ) private view {
        uint256 leaves = uint256(e.blocks) + e.hostCount + e.playerCount;
        uint256 depth;
        while ((uint256(1) << depth) < leaves) ++depth;
        if (index < first || index >= end || proof.length != depth) revert InvalidProof(epochId, index);
        bytes32 node = leaf;
        for (uint256 i; i < depth; ++i) {
            node = (index >> i) & 1 == 0 ? _hashPair(node, proof[i]) : _hashPair(proof[i], node);
        }
        if (node != e.root) revert InvalidProof(epochId, index);
    }

    function _hashPair(bytes32 left, bytes32 right) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            h := keccak256(0x00, 0x40)
        }
    }

    function _verifyBlock(uint256 epochId, Epoch storage e, BlockAt calldata a) private view returns (bytes32 hash) {
        hash = _blockHash(a.leaf);
        _verify(epochId, e, 0, e.blocks, a.index, hash, a.proof);
    }

    function _verifyHost(uint256 epochId, Epoch storage e, HostAt calldata a) private view {
        uint256 first = e.blocks;
        _verify(epochId, e, first, first + e.hostCount, a.index, _hostHash(a.leaf), a.proof);
    }

    function _verifyPlayer(uint256 epochId, Epoch storage e, PlayerAt calldata a) private view {
        uint256 first = uint256(e.blocks) + e.hostCount;
        _verify(epochId, e, first, first + e.playerCount, a.index, _playerHash(a.leaf), a.proof);
    }

    // ---------------------------------------------------------------- internals: lookups

    /// @dev 0 for an empty lookup (nothing before epoch 0).
    function _emptyLookup(PlayerAt[] calldata at) private pure returns (uint256) {
        if (at.length != 0) revert InvalidLookup();
        return 0;
    }

    /// @dev `player`'s cumulative spend in `epochId`: its leaf, or 0 shown by the leaves around
    /// where it would be (one at an end of the section, or two neighbours), or by an empty section.
    function _playerValue(uint256 epochId, address player, PlayerAt[] calldata at) private view returns (uint256) {
        Epoch storage e = _epoch(epochId);
        uint256 first = uint256(e.blocks) + e.hostCount;
        uint256 end = first + e.playerCount;
        if (at.length == 0 && first == end) return 0;
        for (uint256 i; i < at.length; ++i) {
            _verifyPlayer(epochId, e, at[i]);
        }
        if (at.length == 1) {
            PlayerAt calldata x = at[0];
            if (x.leaf.player == player) return x.leaf.cumulative;
            if ((x.index == first && x.leaf.player > player) || (x.index + 1 == end && x.leaf.player < player)) {
                return 0;
            }
        } else if (at.length == 2) {
            if (at[1].index == at[0].index + 1 && at[0].leaf.player < player && at[1].leaf.player > player) return 0;
        }
        revert InvalidLookup();
    }

    /// @dev `player`'s spend in the epoch: the running sum of its last block (the block after it
    /// names another player, or it is the last), or 0 shown as in `_playerValue`.
    function _spendValue(uint256 epochId, Epoch storage e, address player, BlockAt[] calldata at)
        private
        view
        returns (uint256)
    {
        uint256 end = e.blocks;
        if (at.length == 0 && end == 0) return 0;
        for (uint256 i; i < at.length; ++i) {
            _verifyBlock(epochId, e, at[i]);
        }
        if (at.length == 1) {
            BlockAt calldata x = at[0];
            bool last = x.index + 1 == end;
            if (x.leaf.player == player && last) return x.leaf.playerRunning;
            if ((x.index == 0 && x.leaf.player > player) || (last && x.leaf.player < player)) return 0;
        } else if (at.length == 2 && at[1].index == at[0].index + 1) {
            address a = at[0].leaf.player;
            address b = at[1].leaf.player;
            if (a == player && b != player) return at[0].leaf.playerRunning;
            if (a < player && b > player) return 0;
        }
        revert InvalidLookup();
    }

    /// @dev `host`'s total in the epoch: its leaf, or 0 shown as in `_playerValue`.
    function _hostValue(uint256 epochId, Epoch storage e, address host, HostAt[] calldata at)
        private
        view
        returns (uint256)
    {
        uint256 first = e.blocks;
        uint256 end = first + e.hostCount;
        if (at.length == 0 && first == end) return 0;
        for (uint256 i; i < at.length; ++i) {
            _verifyHost(epochId, e, at[i]);
        }
        if (at.length == 1) {
            HostAt calldata x = at[0];
            if (x.leaf.host == host) return x.leaf.amount;
            if ((x.index == first && x.leaf.host > host) || (x.index + 1 == end && x.leaf.host < host)) return 0;
        } else if (at.length == 2) {
            if (at[1].index == at[0].index + 1 && at[0].leaf.host < host && at[1].leaf.host > host) return 0;
        }
        revert InvalidLookup();
    }

    // ---------------------------------------------------------------- internals: vouchers

    /// @dev Reverts unless `voucher` is the one `leaf.player` signed for `leaf.sessionId`.
    function _bindVoucher(BlockLeaf calldata leaf, T.Voucher calldata voucher, bytes calldata signature) private view {
        bytes32 sessionId = _hashTypedDataV4(T.hashVoucher(voucher));
        if (sessionId != leaf.sessionId || ECDSA.recoverCalldata(sessionId, signature) != leaf.player) {
            revert VoucherMismatch();
        }
    }

    function _beyondVoucher(Epoch storage e, BlockLeaf calldata leaf, T.Voucher calldata voucher)
        private
        view
        returns (bool)
    {
        return leaf.host != voucher.host || leaf.blockIndex >= voucher.maxBlocks || leaf.amount > voucher.pricePerBlock
            || e.committedAt > voucher.expiry;
    }

    /// @dev Credits the block's amount back to its player, takes it from its host's total for
    /// the epoch, and slashes the host. Each leaf of an epoch is refunded at most once.
    function _refund(uint256 epochId, BlockLeaf calldata leaf, Refund why) private {
        bytes32 key = keccak256(abi.encode(epochId, _blockHash(leaf)));
        if (_refunded[key]) revert AlreadyRefunded();
        _refunded[key] = true;
        if (leaf.amount > type(uint128).max) revert InvalidAmount(leaf.amount, type(uint128).max);
        uint128 amount = uint128(leaf.amount);
        players[leaf.player].refunded += amount;
        refundedFromHost[epochId][leaf.host] += amount;
        _slashHost(leaf.host);
        emit BlockRefunded(epochId, leaf.sessionId, leaf.blockIndex, leaf.host, amount, why);
    }
}
