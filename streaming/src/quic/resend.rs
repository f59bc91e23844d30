//! Input over datagrams is resent until acknowledged: a lost key-up must
//! not leave a key held. The host applies each input once (by sequence
//! number) and acknowledges repeats again. Sans-I/O: time is passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Shortest wait before resending, whatever the round trip.
const MIN_RESEND_AFTER: Duration = Duration::from_millis(15);

/// An input not acknowledged this long is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(2);

/// Most inputs awaiting acknowledgement; beyond this the oldest is given up.
const MAX_UNACKED: usize = 512;

struct Unacked {
    seq: u32,
    datagram: Bytes,
    first_sent: Instant,
    last_sent: Instant,
}

/// The inputs sent and not yet acknowledged.
#[derive(Default)]
pub struct InputResender {
    unacked: VecDeque<Unacked>,
}

impl InputResender {
    /// An input's datagram went out at `now`.
    pub fn sent(&mut self, seq: u32, datagram: Bytes, now: Instant) {
        self.unacked.push_back(Unacked { seq, datagram, first_sent: now, last_sent: now });
        if self.unacked.len() > MAX_UNACKED {
            self.unacked.pop_front();
        }
    }

    /// The host acknowledged input `seq`.
    pub fn acked(&mut self, seq: u32) {
        self.unacked.retain(|u| u.seq != seq);
    }

    /// The datagrams to send again at `now`, given the path's round trip;
    /// forgets inputs past [`GIVE_UP_AFTER`].
    pub fn due(&mut self, now: Instant, rtt: Duration) -> Vec<Bytes> {
        let after = (rtt + rtt / 4).max(MIN_RESEND_AFTER);
        self.unacked.retain(|u| now.saturating_duration_since(u.first_sent) < GIVE_UP_AFTER);
        self.unacked
            .iter_mut()
            .filter(|u| now.saturating_duration_since(u.last_sent) >= after)
            .map(|u| {
                u.last_sent = now;
                u.datagram.clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unacknowledged_inputs_are_resent_after_a_round_trip_until_acked_or_stale() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let rtt = Duration::from_millis(40);
        let mut r = InputResender::default();
        r.sent(1, Bytes::from_static(b"one"), ms(0));
        r.sent(2, Bytes::from_static(b"two"), ms(10));
        assert!(r.due(ms(49), rtt).is_empty());
        assert_eq!(r.due(ms(50), rtt), vec![Bytes::from_static(b"one")]);
        r.acked(2);
        assert_eq!(r.unacked.len(), 1);
        // Resent again one interval after the last send, not the first.
        assert!(r.due(ms(99), rtt).is_empty());
        assert_eq!(r.due(ms(100), rtt).len(), 1);
        // Given up after two seconds.
        assert!(r.due(ms(2000), rtt).is_empty());
        assert!(r.unacked.is_empty());
    }

    #[test]
    fn a_tiny_round_trip_still_waits_the_minimum_and_memory_is_bounded() {
        let t0 = Instant::now();
        let mut r = InputResender::default();
        r.sent(1, Bytes::new(), t0);
        assert!(r.due(t0 + Duration::from_millis(14), Duration::ZERO).is_empty());
        assert_eq!(r.due(t0 + MIN_RESEND_AFTER, Duration::ZERO).len(), 1);
        for seq in 0..2000 {
            r.sent(seq, Bytes::new(), t0);
        }
        assert_eq!(r.unacked.len(), MAX_UNACKED);
    }
}
