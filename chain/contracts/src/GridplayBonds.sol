// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @title The operator, checker keys and host bonds of Gridplay settlement
/// @notice A host bonds to be placed; its bond is slashed when a dispute against one of its
/// blocks succeeds, and leaves the contract only after an unbonding period. Slashed wei stays
/// in the contract (burned), so nobody profits from a dispute they provoked.
abstract contract GridplayBonds is ReentrancyGuard {
    /// @notice A bonded host.
    struct Host {
        /// Bond in wei.
        uint128 bond;
        /// When the bond may be withdrawn; 0 while the host is active.
        uint64 unbondingAt;
    }

    /// @notice The address allowed to commit epochs and name checkers.
    address public immutable operator;
    /// @notice Seconds between a host's unbond request and its bond withdrawal.
    uint64 public immutable unbondingPeriod;
    /// @notice Smallest bond a host may hold when it registers or tops up.
    uint128 public immutable minBond;
    /// @notice Wei taken from a host's bond (at most all of it) per successful dispute.
    uint128 public immutable slashAmount;

    /// @notice Bonded hosts by address.
    mapping(address host => Host) public hosts;
    /// @notice Checker keys whose signed probe summaries can back a dispute.
    mapping(address checker => bool) public isChecker;
    /// @notice Wei slashed from bonds so far; it stays in the contract (burned).
    uint256 public slashedTotal;

    /// @notice A host bonded or topped up its bond.
    event HostBonded(address indexed host, uint256 amount, uint256 bond);
    /// @notice A host asked to unbond; its bond can be withdrawn at `unbondingAt`.
    event HostUnbonding(address indexed host, uint64 unbondingAt);
    /// @notice A host withdrew its bond and is no longer registered.
    event HostWithdrawn(address indexed host, uint256 amount);
    /// @notice The operator added or removed a checker key.
    event CheckerSet(address indexed checker, bool enabled);

    /// @notice Constructor arguments are inconsistent.
    error InvalidConfig();
    /// @notice Only the operator may do this.
    error NotOperator();
    /// @notice The host's bond would be below `minBond`.
    error BondTooSmall(uint256 bond, uint256 minBond);
    /// @notice The host holds no bond.
    error NotBonded();
    /// @notice The host has already asked to unbond.
    error AlreadyUnbonding();
    /// @notice The host has not asked to unbond, or its unbonding period has not passed.
    error BondLocked(uint64 unbondingAt);

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator();
        _;
    }

    /// @param operator_ The broker's settlement key: commits epochs, names checkers.
    /// @param unbondingPeriod_ Seconds a host waits to withdraw its bond.
    /// @param minBond_ Smallest host bond in wei; not zero.
    /// @param slashAmount_ Wei slashed per successful dispute.
    constructor(address operator_, uint64 unbondingPeriod_, uint128 minBond_, uint128 slashAmount_) {
        if (operator_ == address(0) || minBond_ == 0) revert InvalidConfig();
        operator = operator_;
        unbondingPeriod = unbondingPeriod_;
        minBond = minBond_;
        slashAmount = slashAmount_;
    }

    /// @notice Registers the sender as a host with `msg.value` as bond, or tops up its bond.
    /// @dev The resulting bond must be at least `minBond`; an unbonding host cannot top up.
    function registerHost() external payable {
        Host storage h = hosts[msg.sender];
        if (h.unbondingAt != 0) revert AlreadyUnbonding();
        uint256 bond = h.bond + msg.value;
        if (bond < minBond) revert BondTooSmall(bond, minBond);
        h.bond = uint128(bond);
        emit HostBonded(msg.sender, msg.value, bond);
    }

    /// @notice Starts the sender's unbonding period; the bond stays slashable until withdrawn.
    function requestUnbond() external {
        Host storage h = hosts[msg.sender];
        if (h.bond == 0) revert NotBonded();
        if (h.unbondingAt != 0) revert AlreadyUnbonding();
        uint64 at = uint64(block.timestamp) + unbondingPeriod;
        h.unbondingAt = at;
        emit HostUnbonding(msg.sender, at);
    }

    /// @notice Pays the sender its remaining bond once its unbonding period has passed.
    function withdrawBond() external nonReentrant {
        Host memory h = hosts[msg.sender];
        if (h.unbondingAt == 0 || block.timestamp < h.unbondingAt) revert BondLocked(h.unbondingAt);
        delete hosts[msg.sender];
        emit HostWithdrawn(msg.sender, h.bond);
        Address.sendValue(payable(msg.sender), h.bond);
    }

    /// @notice Adds or removes a checker key whose signed probe summaries can back disputes.
    function setChecker(address checker, bool enabled) external onlyOperator {
        isChecker[checker] = enabled;
        emit CheckerSet(checker, enabled);
    }

    /// @dev Takes `slashAmount` (at most the whole bond) from `host`; returns what was taken.
    function _slashHost(address host) internal returns (uint128 slashed) {
        Host storage h = hosts[host];
        slashed = h.bond < slashAmount ? h.bond : slashAmount;
        h.bond -= slashed;
        slashedTotal += slashed;
    }
}
