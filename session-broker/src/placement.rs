//! Placement: a pure function from candidate hosts and a request to a
//! ranked list of hosts to try.
//!
//! Hard constraints: the host runs the request's app under its profile,
//! offers that profile at that size and rate, has a free slot, its predicted RTT
//! is within `max_rtt_ms`, and its price now (its base price at its region's
//! surge, [`crate::pricing`]) is within `max_price_per_block`.
//! Among the rest, lower score wins: `predicted RTT + PACKING_MS × free
//! fraction + PRICE_MS × relative price + REPUTATION_MS × (1 − reputation)`,
//! so RTT dominates, a host checkers found wanting must be that much nearer
//! to win, partly used hosts fill before empty ones (best fit), and price
//! breaks near-ties.

use std::cmp::Ordering;

use gridplay_protocol::AllocateRequest;

use crate::store::HostView;

/// RTT assumed on top of propagation when predicting from distance, ms.
pub const BASE_RTT_MS: f64 = 5.0;
/// Round trip per km of great-circle distance (light in fibre, with detours), ms.
pub const RTT_MS_PER_KM: f64 = 0.015;
/// Score added for an entirely free host versus a nearly full one, ms.
pub const PACKING_MS: f64 = 4.0;
/// Score added for the dearest candidate versus the cheapest, ms.
pub const PRICE_MS: f64 = 2.0;
/// Score added for a host with no reputation left versus a spotless one, ms.
pub const REPUTATION_MS: f64 = 50.0;
/// Weight of the newest checker report in a host's reputation.
pub const REPUTATION_WEIGHT: f64 = 0.25;
/// The reputation of a host no checker has reported on.
pub const INITIAL_REPUTATION: f64 = 1.0;

/// A host's reputation after one more checker report: an exponentially
/// weighted share of reports that found the service delivered, in `0..=1`.
pub fn next_reputation(current: f64, delivered: bool) -> f64 {
    let current = if current.is_finite() { current.clamp(0.0, 1.0) } else { INITIAL_REPUTATION };
    current + REPUTATION_WEIGHT * (f64::from(u8::from(delivered)) - current)
}

/// A host that passed the hard constraints, with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked<'a> {
    /// The host.
    pub host: &'a HostView,
    /// Predicted round-trip time, ms.
    pub predicted_rtt_ms: f64,
    /// What a block costs on it now, wei.
    pub price_per_block: u64,
    /// Lower is better.
    pub score: f64,
}

/// Predicts a client's RTT to a host: its own measurement when it sent one,
/// else the distance model.
pub fn predict_rtt_ms(host: &HostView, request: &AllocateRequest) -> f64 {
    let measured = request
        .rtt_samples
        .iter()
        .flatten()
        .filter(|s| s.host_id == host.registration.host_id)
        .map(|s| s.rtt_ms)
        .min_by(f64::total_cmp);
    measured.unwrap_or(BASE_RTT_MS + RTT_MS_PER_KM * host.distance_km)
}

/// Ranks the hosts that can serve `request`, best first; `price_of` says what a block on
/// each costs now.
pub fn rank<'a>(
    hosts: &'a [HostView],
    request: &AllocateRequest,
    price_of: impl Fn(&HostView) -> u64,
) -> Vec<Ranked<'a>> {
    let prices: Vec<u64> = hosts.iter().map(&price_of).collect();
    let (cheapest, dearest) =
        prices.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &p| (lo.min(p as f64), hi.max(p as f64)));
    let price_span = (dearest - cheapest).max(1.0);
    let max_price = request.max_price();
    let mut ranked: Vec<Ranked<'a>> = hosts
        .iter()
        .zip(prices)
        .filter_map(|(host, price_per_block)| {
            if max_price.is_some_and(|max| u128::from(price_per_block) > max) {
                return None;
            }
            if host.registration.app_profile(&request.app) != Some(request.profile) {
                return None;
            }
            let offer = host.registration.offer(request.profile).filter(|o| o.fits(request))?;
            let used = host.used.get(&request.profile).copied().unwrap_or(0);
            if used >= offer.slots {
                return None;
            }
            let predicted_rtt_ms = predict_rtt_ms(host, request);
            if request.max_rtt_ms.is_some_and(|max| predicted_rtt_ms > f64::from(max)) {
                return None;
            }
            let free_fraction = f64::from(offer.slots - used - 1) / f64::from(offer.slots);
            let price = (price_per_block as f64 - cheapest) / price_span;
            let distrust = 1.0 - host.reputation.clamp(0.0, 1.0);
            let score = predicted_rtt_ms
                + PACKING_MS * free_fraction
                + PRICE_MS * price
                + REPUTATION_MS * distrust;
            Some(Ranked { host, predicted_rtt_ms, price_per_block, score })
        })
        .collect();
    ranked.sort_by(|a, b| {
        a.score
            .partial_cmp(&b.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.host.registration.host_id.cmp(&b.host.registration.host_id))
    });
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::host;
    use gridplay_protocol::{Profile, RttSample};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn base_price(host: &HostView) -> u64 {
        host.registration.price_per_block
    }

    fn request() -> AllocateRequest {
        AllocateRequest {
            app: "orbit".into(),
            profile: Profile::Game,
            width: 1280,
            height: 720,
            fps: 60,
            location: None,
            rtt_samples: None,
            max_rtt_ms: None,
            client_key: None,
            max_price_per_block: None,
        }
    }

    fn view(id: &str, slots: u32, used: u32, distance_km: f64) -> HostView {
        HostView {
            registration: std::sync::Arc::new(host(id, slots, 0, 0.0, 0.0)),
            used: BTreeMap::from([(Profile::Game, used)]),
            distance_km,
            reputation: INITIAL_REPUTATION,
        }
    }

    #[test]
    fn a_host_dearer_now_than_the_player_accepts_is_never_chosen() {
        let hosts = [view("near", 4, 0, 10.0), view("far", 4, 0, 2000.0)];
        // The near host's region surges to ×1.5: 150 a block where the player accepts 120.
        let surging = |h: &HostView| match h.registration.host_id.as_str() {
            "near" => 150,
            _ => h.registration.price_per_block,
        };
        let req = AllocateRequest { max_price_per_block: Some("120".into()), ..request() };
        let ranked = rank(&hosts, &req, surging);
        let chosen: Vec<(&str, u64)> = ranked
            .iter()
            .map(|r| (r.host.registration.host_id.as_str(), r.price_per_block))
            .collect();
        assert_eq!(chosen, [("far", 100)]);
        assert_eq!(
            rank(&hosts, &request(), surging)[0].price_per_block,
            150,
            "no limit: the nearest"
        );
    }

    #[test]
    fn reputation_moves_towards_each_report_and_stays_in_bounds() {
        let mut r = INITIAL_REPUTATION;
        r = next_reputation(r, false);
        assert_eq!(r, 0.75);
        r = next_reputation(r, true);
        assert_eq!(r, 0.8125);
        for _ in 0..100 {
            r = next_reputation(r, false);
        }
        assert!((0.0..0.001).contains(&r));
        assert_eq!(next_reputation(f64::NAN, true), 1.0);
        assert_eq!(next_reputation(7.0, true), 1.0);
    }

    #[test]
    fn a_host_checkers_found_wanting_loses_to_an_equal_one() {
        let mut bad = view("bad", 4, 1, 100.0);
        bad.reputation = 0.4;
        let hosts = [bad, view("good", 4, 1, 100.0)];
        assert_eq!(rank(&hosts, &request(), base_price)[0].host.registration.host_id, "good");
        // ...but still serves when it is much nearer.
        let mut bad = view("bad", 4, 1, 0.0);
        bad.reputation = 0.4;
        let hosts = [bad, view("good", 4, 1, 5000.0)];
        assert_eq!(rank(&hosts, &request(), base_price)[0].host.registration.host_id, "bad");
    }

    #[test]
    fn measured_rtt_beats_the_distance_model() {
        let hosts = [view("near", 4, 0, 10.0), view("far", 4, 0, 3000.0)];
        let mut req = request();
        assert_eq!(rank(&hosts, &req, base_price)[0].host.registration.host_id, "near");
        req.rtt_samples = Some(vec![
            RttSample { host_id: "near".into(), rtt_ms: 80.0 },
            RttSample { host_id: "far".into(), rtt_ms: 20.0 },
        ]);
        assert_eq!(rank(&hosts, &req, base_price)[0].host.registration.host_id, "far");
    }

    #[test]
    fn max_rtt_and_size_are_hard_limits() {
        let hosts = [view("far", 4, 0, 10_000.0)];
        let req = AllocateRequest { max_rtt_ms: Some(50), ..request() };
        assert!(rank(&hosts, &req, base_price).is_empty());
        let req = AllocateRequest { width: 3840, height: 2160, ..request() };
        assert!(rank(&hosts, &req, base_price).is_empty(), "offer tops out at 1920x1080");
    }

    fn arb_host() -> impl Strategy<Value = (u32, u32, f64, u64, Option<f64>)> {
        (1u32..8, 0u32..8, 0.0f64..5000.0, 0u64..1000, proptest::option::of(1.0f64..300.0))
            .prop_map(|(slots, used, km, price, rtt)| (slots, used.min(slots), km, price, rtt))
    }

    proptest! {
        #[test]
        fn never_violates_a_constraint(
            hosts in proptest::collection::vec(arb_host(), 0..12),
            max_rtt in proptest::option::of(5u32..200),
        ) {
            let views: Vec<HostView> = hosts.iter().enumerate().map(|(i, (slots, used, km, price, _))| {
                let mut v = view(&format!("h{i}"), *slots, *used, *km);
                std::sync::Arc::make_mut(&mut v.registration).price_per_block = *price;
                v
            }).collect();
            let samples = hosts.iter().enumerate()
                .filter_map(|(i, h)| h.4.map(|rtt| RttSample { host_id: format!("h{i}"), rtt_ms: rtt }))
                .collect();
            let req = AllocateRequest { max_rtt_ms: max_rtt, rtt_samples: Some(samples), ..request() };
            for r in rank(&views, &req, base_price) {
                let used = r.host.used[&Profile::Game];
                prop_assert!(used < r.host.registration.offer(Profile::Game).unwrap().slots);
                if let Some(max) = max_rtt {
                    prop_assert!(r.predicted_rtt_ms <= f64::from(max));
                }
            }
        }

        #[test]
        fn lower_rtt_wins_when_all_else_is_equal(a in 1.0f64..300.0, b in 1.0f64..300.0) {
            prop_assume!((a - b).abs() > 1e-6);
            let hosts = [view("a", 4, 1, 0.0), view("b", 4, 1, 0.0)];
            let req = AllocateRequest {
                rtt_samples: Some(vec![
                    RttSample { host_id: "a".into(), rtt_ms: a },
                    RttSample { host_id: "b".into(), rtt_ms: b },
                ]),
                ..request()
            };
            let best = &rank(&hosts, &req, base_price)[0].host.registration.host_id;
            prop_assert_eq!(best.as_str(), if a < b { "a" } else { "b" });
        }

        #[test]
        fn partly_used_hosts_fill_before_empty_ones(slots in 2u32..16, used in 1u32..15, km in 0.0f64..5000.0) {
            prop_assume!(used < slots);
            let hosts = [view("empty", slots, 0, km), view("busy", slots, used, km)];
            prop_assert_eq!(rank(&hosts, &request(), base_price)[0].host.registration.host_id.as_str(), "busy");
        }
    }
}
