//! Prometheus metrics: allocations, failures by reason, allocation latency,
//! free slots per profile.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use gridplay_protocol::Profile;
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

/// The broker's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    allocations: Counter,
    failures: Family<Reason, Counter>,
    latency: Histogram,
    free_slots: Family<ProfileLabel, Gauge<u64, AtomicU64>>,
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
        Self { registry, allocations, failures, latency, free_slots }
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

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}
