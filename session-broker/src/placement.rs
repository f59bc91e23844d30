//! Placement: a pure function from the candidate hosts and a request to the
//! chosen host.

use gridplay_protocol::AllocateRequest;

/// A host as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Host id.
    pub host_id: String,
    /// Slots it offers.
    pub slots: u32,
    /// Slots in use.
    pub used: u32,
}

/// Picks the host for a request, or `None` when no host has a free slot.
///
/// Best-fit packing: the fullest host that still has room wins, so that
/// whole hosts stay free for large requests and idle hosts can be drained;
/// ties go to the lowest host id so the choice is deterministic.
pub fn place<'a>(candidates: &'a [Candidate], _request: &AllocateRequest) -> Option<&'a Candidate> {
    candidates
        .iter()
        .filter(|c| c.used < c.slots)
        .min_by(|a, b| (a.slots - a.used).cmp(&(b.slots - b.used)).then(a.host_id.cmp(&b.host_id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridplay_protocol::Profile;

    fn request() -> AllocateRequest {
        AllocateRequest {
            app: "orbit".into(),
            profile: Profile::Game,
            width: 1280,
            height: 720,
            fps: 60,
        }
    }

    fn host(id: &str, slots: u32, used: u32) -> Candidate {
        Candidate { host_id: id.into(), slots, used }
    }

    #[test]
    fn never_picks_a_full_host() {
        assert_eq!(place(&[host("a", 2, 2)], &request()), None);
        assert_eq!(place(&[], &request()), None);
    }

    #[test]
    fn partly_used_hosts_fill_before_empty_ones() {
        let hosts = [host("empty", 4, 0), host("busy", 4, 3), host("half", 4, 2)];
        assert_eq!(place(&hosts, &request()).unwrap().host_id, "busy");
    }

    #[test]
    fn ties_break_by_id() {
        let hosts = [host("b", 1, 0), host("a", 1, 0)];
        assert_eq!(place(&hosts, &request()).unwrap().host_id, "a");
    }
}
