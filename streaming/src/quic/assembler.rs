//! Puts received frames back in order: whole frames from frame streams, or
//! fragments from datagrams. Sans-I/O: bytes in, ordered frames out.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use gridplay_protocol::quic::{Fragment, FrameHeader};

/// Most frames held at once; beyond this the oldest is given up as lost.
const MAX_PENDING: usize = 64;

/// What comes out of the assembler, in frame order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// A whole access unit.
    Frame {
        /// Its header.
        header: FrameHeader,
        /// Annex-B bytes.
        data: Bytes,
    },
    /// A frame that will not arrive whole (a fragment lost, a stream reset):
    /// the picture needs a keyframe.
    Lost {
        /// Its id.
        frame_id: u32,
    },
}

/// A frame being received.
struct Pending {
    header: Option<FrameHeader>,
    parts: Vec<Option<Bytes>>,
    missing: usize,
    whole: Option<Bytes>,
}

impl Pending {
    fn empty() -> Self {
        Self { header: None, parts: Vec::new(), missing: usize::MAX, whole: None }
    }
}

/// Reorders frames by id and detects losses.
///
/// A frame is delivered once it and every frame before it are settled.
/// Frames that completed after a gap wait; once more than `reorder_window`
/// of them wait, the oldest missing frame is declared lost. Frame streams
/// are reliable and all but in order, so a few frames of window only cover
/// scheduling; datagrams are never resent, so their window is 0.
pub struct FrameAssembler {
    next: Option<u32>,
    pending: BTreeMap<u32, Pending>,
    reorder_window: usize,
}

impl FrameAssembler {
    /// An assembler that holds at most `reorder_window` completed frames
    /// behind a missing one.
    pub fn new(reorder_window: usize) -> Self {
        Self { next: None, pending: BTreeMap::new(), reorder_window }
    }

    /// A whole frame arrived on its stream.
    pub fn on_frame(&mut self, header: FrameHeader, data: Bytes) -> Vec<Assembled> {
        if !self.admit(header.frame_id) {
            return Vec::new();
        }
        let entry = self.pending.entry(header.frame_id).or_insert_with(Pending::empty);
        entry.header = Some(header);
        entry.whole = Some(data);
        self.drain()
    }

    /// A fragment arrived in a datagram.
    pub fn on_fragment(&mut self, fragment: &Fragment<'_>) -> Vec<Assembled> {
        let id = fragment.header.frame_id;
        if !self.admit(id) {
            return Vec::new();
        }
        let entry = self.pending.entry(id).or_insert_with(Pending::empty);
        if entry.whole.is_some() {
            return Vec::new();
        }
        if entry.parts.is_empty() {
            entry.header = Some(fragment.header);
            entry.parts = vec![None; usize::from(fragment.count)];
            entry.missing = entry.parts.len();
        }
        let consistent = entry.parts.len() == usize::from(fragment.count)
            && entry.header == Some(fragment.header);
        match entry.parts.get_mut(usize::from(fragment.index)) {
            Some(slot @ None) if consistent => {
                *slot = Some(Bytes::copy_from_slice(fragment.payload));
                entry.missing -= 1;
            }
            _ => return Vec::new(),
        }
        if entry.missing == 0 {
            let mut whole = BytesMut::new();
            for part in entry.parts.drain(..).flatten() {
                whole.extend_from_slice(&part);
            }
            entry.whole = Some(whole.freeze());
        }
        self.drain()
    }

    /// Whether a frame id is still wanted; the first one seen starts the count.
    fn admit(&mut self, frame_id: u32) -> bool {
        let next = *self.next.get_or_insert(frame_id);
        frame_id >= next
    }

    /// Delivers every settled frame in order, giving up on missing ones
    /// once too many completed frames wait behind them.
    fn drain(&mut self) -> Vec<Assembled> {
        let mut out = Vec::new();
        while let Some(next) = self.next {
            let ready = self.pending.get(&next).is_some_and(|p| p.whole.is_some());
            if ready {
                let pending = self.pending.remove(&next).expect("checked");
                let header = pending.header.expect("whole frames have headers");
                out.push(Assembled::Frame { header, data: pending.whole.expect("checked") });
                self.next = Some(next.wrapping_add(1));
                continue;
            }
            let waiting = self.pending.values().filter(|p| p.whole.is_some()).count();
            if waiting > self.reorder_window || self.pending.len() > MAX_PENDING {
                self.pending.remove(&next);
                out.push(Assembled::Lost { frame_id: next });
                // Skip straight to the oldest frame still held.
                let oldest = self.pending.keys().next().copied().unwrap_or(next.wrapping_add(1));
                for frame_id in next.wrapping_add(1)..oldest {
                    out.push(Assembled::Lost { frame_id });
                }
                self.next = Some(oldest);
                continue;
            }
            break;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(frame_id: u32) -> FrameHeader {
        FrameHeader { frame_id, timestamp: frame_id * 1500, keyframe: frame_id == 1 }
    }

    fn frame(frame_id: u32) -> Assembled {
        Assembled::Frame { header: header(frame_id), data: Bytes::from(vec![frame_id as u8; 3]) }
    }

    fn whole(a: &mut FrameAssembler, frame_id: u32) -> Vec<Assembled> {
        a.on_frame(header(frame_id), Bytes::from(vec![frame_id as u8; 3]))
    }

    #[test]
    fn streams_deliver_in_order_and_wait_within_the_window() {
        let mut a = FrameAssembler::new(2);
        assert_eq!(whole(&mut a, 1), vec![frame(1)]);
        assert_eq!(whole(&mut a, 3), vec![]);
        assert_eq!(whole(&mut a, 2), vec![frame(2), frame(3)]);
        // Frame 4 never comes: after three later frames it is lost.
        assert_eq!(whole(&mut a, 5), vec![]);
        assert_eq!(whole(&mut a, 6), vec![]);
        assert_eq!(
            whole(&mut a, 7),
            vec![Assembled::Lost { frame_id: 4 }, frame(5), frame(6), frame(7)]
        );
        // Late arrivals of settled frames are ignored.
        assert_eq!(whole(&mut a, 4), vec![]);
        assert_eq!(whole(&mut a, 2), vec![]);
    }

    #[test]
    fn datagrams_reassemble_and_a_lost_fragment_loses_only_its_frame() {
        let mut a = FrameAssembler::new(0);
        let unit: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let first = Fragment::split(header(1), &unit, 1000).expect("split");
        assert_eq!(first.len(), 3);
        // Out of order within a frame is fine; a duplicate is ignored.
        assert!(a.on_fragment(&first[2]).is_empty());
        assert!(a.on_fragment(&first[0]).is_empty());
        assert!(a.on_fragment(&first[0]).is_empty());
        let out = a.on_fragment(&first[1]);
        assert_eq!(
            out,
            vec![Assembled::Frame { header: header(1), data: Bytes::from(unit.clone()) }]
        );
        // Frame 2 loses its middle fragment; frame 3 completes: 2 is lost.
        let second = Fragment::split(header(2), &unit, 1000).expect("split");
        assert!(a.on_fragment(&second[0]).is_empty());
        assert!(a.on_fragment(&second[2]).is_empty());
        let third = Fragment::split(header(3), b"abc", 1000).expect("split");
        let out = a.on_fragment(&third[0]);
        assert_eq!(
            out,
            vec![
                Assembled::Lost { frame_id: 2 },
                Assembled::Frame { header: header(3), data: Bytes::from_static(b"abc") }
            ]
        );
        // Its straggler changes nothing.
        assert!(a.on_fragment(&second[1]).is_empty());
    }

    #[test]
    fn a_gap_of_frames_never_seen_is_reported_lost() {
        let mut a = FrameAssembler::new(0);
        assert_eq!(whole(&mut a, 10), vec![frame(10)]);
        assert_eq!(
            whole(&mut a, 13),
            vec![Assembled::Lost { frame_id: 11 }, Assembled::Lost { frame_id: 12 }, frame(13)]
        );
    }

    #[test]
    fn inconsistent_fragments_are_ignored() {
        let mut a = FrameAssembler::new(0);
        let parts = Fragment::split(header(1), &[7u8; 1500], 1000).expect("split");
        assert!(a.on_fragment(&parts[0]).is_empty());
        // Same frame id claiming another fragment count.
        let liar = Fragment { header: header(1), index: 1, count: 5, payload: b"x" };
        assert!(a.on_fragment(&liar).is_empty());
        let out = a.on_fragment(&parts[1]);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn memory_stays_bounded_when_frames_never_complete() {
        let mut a = FrameAssembler::new(1000);
        let mut delivered = 0;
        for id in 1..500u32 {
            let parts = Fragment::split(header(id), &[1u8; 3000], 1000).expect("split");
            delivered += a.on_fragment(&parts[0]).len();
        }
        assert!(a.pending.len() <= MAX_PENDING + 1);
        assert!(delivered > 0);
    }
}
