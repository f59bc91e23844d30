//! Small SDP rewrites for reaching a peer through a UDP relay.

use std::net::IpAddr;

/// Points every host ICE candidate (and the connection line) of `sdp` at `relay`,
/// keeping the ports: the relay forwards each port to the same port on the
/// original address. Server-reflexive and TURN relay candidates stay as they are.
pub fn route_candidates_via(sdp: &str, relay: IpAddr) -> String {
    let family = if relay.is_ipv4() { "IP4" } else { "IP6" };
    rewrite_lines(sdp, |line| {
        if let Some(rest) = line.strip_prefix("a=candidate:") {
            let mut fields: Vec<&str> = rest.split(' ').collect();
            let relay = relay.to_string();
            if fields.len() > 7 && fields[6] == "typ" && fields[7] == "host" {
                fields[4] = &relay;
                return Some(format!("a=candidate:{}", fields.join(" ")));
            }
        } else if line.starts_with("c=IN ") {
            return Some(format!("c=IN {family} {relay}"));
        }
        Some(line.to_owned())
    })
}

/// How many candidates of each type an SDP offers (first component only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CandidateCounts {
    /// Host candidates: the bound addresses.
    pub host: usize,
    /// Server-reflexive candidates: a NAT's address, learnt by STUN.
    pub srflx: usize,
    /// Relay candidates: addresses on a TURN server.
    pub relay: usize,
}

/// Counts the candidates of `sdp` by type.
pub fn candidate_counts(sdp: &str) -> CandidateCounts {
    let mut counts = CandidateCounts::default();
    for line in sdp.lines() {
        let Some(rest) = line.strip_prefix("a=candidate:") else { continue };
        let fields: Vec<&str> = rest.split(' ').collect();
        if fields.get(1) != Some(&"1") || fields.get(6) != Some(&"typ") {
            continue;
        }
        match fields.get(7) {
            Some(&"host") => counts.host += 1,
            Some(&"srflx") => counts.srflx += 1,
            Some(&"relay") => counts.relay += 1,
            _ => {}
        }
    }
    counts
}

/// Removes every ICE candidate, so the remote learns this side only from
/// its connectivity checks (as a peer-reflexive candidate).
pub fn without_candidates(sdp: &str) -> String {
    rewrite_lines(sdp, |line| (!line.starts_with("a=candidate:")).then(|| line.to_owned()))
}

fn rewrite_lines(sdp: &str, mut rewrite: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.lines() {
        if let Some(line) = rewrite(line) {
            out.push_str(&line);
            out.push_str("\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\nc=IN IP4 10.0.0.5\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n\
        a=candidate:1 1 udp 2130706431 10.0.0.5 40001 typ host\r\n\
        a=candidate:2 1 udp 1694498815 203.0.113.9 50001 typ srflx raddr 10.0.0.5 rport 40001\r\na=mid:0\r\n";

    #[test]
    fn rewrites_candidate_addresses_and_keeps_ports() {
        let out = route_candidates_via(SDP, "192.168.7.1".parse().unwrap());
        assert!(
            out.contains("a=candidate:1 1 udp 2130706431 192.168.7.1 40001 typ host\r\n"),
            "{out}"
        );
        assert!(out.contains("203.0.113.9 50001 typ srflx"), "{out}");
        assert!(out.contains("c=IN IP4 192.168.7.1\r\n"));
        assert!(out.contains("a=mid:0\r\n"));
    }

    #[test]
    fn counts_candidates_by_type() {
        let counts = candidate_counts(SDP);
        assert_eq!(counts, CandidateCounts { host: 1, srflx: 1, relay: 0 });
    }

    #[test]
    fn strips_candidates_only() {
        let out = without_candidates(SDP);
        assert!(!out.contains("a=candidate"));
        assert!(out.starts_with("v=0\r\nc=IN IP4 10.0.0.5\r\n") && out.contains("a=mid:0"));
    }
}
