//! Prometheus metrics: allocations, failures by reason, allocation latency,
//! free slots per profile, and the network's figures (hosts and sessions by
//! region, what was delivered) as `GET /v1/network` has them.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use gridplay_protocol::Profile;
use gridplay_protocol::network::NetworkView;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::BrokerError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileLabel {
    profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegionLabel {
    region: String,
}

type Level = Gauge<f64, AtomicU64>;
type Count = Gauge<u64, AtomicU64>;

/// The network's figures, as the network page shows them.
#[derive(Default)]
struct NetworkGauges {
    hosts: Family<RegionLabel, Count>,
    sessions: Family<RegionLabel, Count>,
    surge: Family<RegionLabel, Level>,
    delivered_hours: Level,
    blocks_billed: Count,
    blocks_delivered: Count,
    sessions_billed: Count,
    fps: Level,
    click_to_photon_ms: Level,
    paid_per_hour_wei: Level,
    checks: Count,
    checks_delivered: Count,
}

impl NetworkGauges {
    fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("network");
        sub.register("hosts", "Live hosts, by region", self.hosts.clone());
        sub.register("sessions", "Sessions on live hosts, by region", self.sessions.clone());
        sub.register("surge", "Demand factor on base prices, by region", self.surge.clone());
        sub.register(
            "delivered_hours",
            "Compute hours of delivered blocks, as billed",
            self.delivered_hours.clone(),
        );
        sub.register("blocks_billed", "15-minute blocks billed", self.blocks_billed.clone());
        sub.register(
            "blocks_delivered",
            "Blocks billed whose players' probes met the service level",
            self.blocks_delivered.clone(),
        );
        sub.register(
            "sessions_billed",
            "Sessions billed to their end",
            self.sessions_billed.clone(),
        );
        sub.register("fps", "Mean frames a second players presented", self.fps.clone());
        sub.register(
            "click_to_photon_ms",
            "Median of blocks' click-to-photon (each second's p95)",
            self.click_to_photon_ms.clone(),
        );
        sub.register("checks", "Checker reports counted", self.checks.clone());
        sub.register(
            "checks_delivered",
            "Checker reports that found the service delivered",
            self.checks_delivered.clone(),
        );
        sub.register(
            "paid_per_hour_wei",
            "Paid to hosts per delivered hour, wei",
            self.paid_per_hour_wei.clone(),
        );
    }
}

/// The broker's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    allocations: Counter,
    failures: Family<Reason, Counter>,
    latency: Histogram,
    free_slots: Family<ProfileLabel, Gauge<u64, AtomicU64>>,
    network: NetworkGauges,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gridplay_broker");
        let allocations = Counter::default();
        let failures = Family::<Reason, Counter>::default();
        let latency = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        let free_slots = Family::<ProfileLabel, Gauge<u64, AtomicU64>>::default();
        registry.register("allocations", "Sessions allocated", allocations.clone());
        registry.register(
            "allocation_failures",
            "Allocations refused, by reason",
            failures.clone(),
        );
        registry.register("allocation_seconds", "Time to answer an allocation", latency.clone());
        registry.register(
            "free_slots",
            "Free slots over live hosts, by profile",
            free_slots.clone(),
        );
        let network = NetworkGauges::default();
        network.register(&mut registry);
        Self { registry, allocations, failures, latency, free_slots, network }
    }
}

impl Metrics {
    /// Counts one allocation attempt and its latency.
    pub fn record_allocation<T>(&self, result: &Result<T, BrokerError>, took: Duration) {
        self.latency.observe(took.as_secs_f64());
        match result {
            Ok(_) => {
                self.allocations.inc();
            }
            Err(e) => {
                self.failures.get_or_create(&Reason { reason: e.code().into() }).inc();
            }
        }
    }

    /// Sets the free-slot gauges.
    pub fn set_free_slots(&self, free: &BTreeMap<Profile, u32>) {
        for (profile, slots) in free {
            let profile =
                serde_json::to_value(profile).ok().and_then(|v| v.as_str().map(str::to_owned));
            self.free_slots
                .get_or_create(&ProfileLabel { profile: profile.unwrap_or_default() })
                .set(u64::from(*slots));
        }
    }

    /// Sets the network's gauges from `view`.
    pub fn set_network(&self, view: &NetworkView) {
        let gauges = &self.network;
        // A region no host is left in is gone, not stale.
        gauges.hosts.clear();
        gauges.sessions.clear();
        gauges.surge.clear();
        for region in &view.regions {
            let label = RegionLabel { region: region.region.clone() };
            gauges.hosts.get_or_create(&label).set(u64::from(region.hosts));
            gauges.sessions.get_or_create(&label).set(u64::from(region.sessions));
            gauges.surge.get_or_create(&label).set(f64::from(region.surge_milli) / 1000.0);
        }
        gauges.checks.set(view.checks.reports);
        gauges.checks_delivered.set(view.checks.delivered);
        let Some(delivered) = &view.delivered else { return };
        let total = &delivered.total;
        gauges.delivered_hours.set(total.delivered_hours);
        gauges.blocks_billed.set(total.blocks_billed);
        gauges.blocks_delivered.set(total.blocks_delivered);
        gauges.sessions_billed.set(total.sessions);
        gauges.fps.set(total.fps.unwrap_or(f64::NAN));
        gauges.click_to_photon_ms.set(total.click_to_photon_ms.unwrap_or(f64::NAN));
        let per_hour = total.paid_per_hour_wei.as_deref().and_then(|w| w.parse().ok());
        gauges.paid_per_hour_wei.set(per_hour.unwrap_or(f64::NAN));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}
