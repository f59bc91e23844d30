//! Pieces the host's interceptors share: [`Hooked`], an interceptor that passes every
//! packet through and lets a [`PacketHook`] look at (and mark) what comes from the wire
//! and what goes to it, and [`LocalStreams`], the local streams of one kind by SSRC.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// What an [`Hooked`] interceptor does with the packets it reads.
pub(crate) trait PacketHook: Send + Sync {
    /// Looks at one packet read from the wire, and may mark it.
    fn read(&mut self, _msg: &mut TaggedPacket) {}
    /// Looks at one packet on its way to the wire, and may change it.
    fn write(&mut self, _msg: &mut TaggedPacket) {}
    /// A local stream was bound.
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    /// A local stream was unbound.
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
}

/// An interceptor that passes everything through, showing its hook what passes.
pub(crate) struct Hooked<H> {
    hook: H,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl<H: PacketHook> Hooked<H> {
    /// Shows `hook` every packet read.
    pub(crate) fn new(hook: H) -> Self {
        Self { hook, read: VecDeque::new(), write: VecDeque::new() }
    }
}

impl<H: PacketHook> Protocol<TaggedPacket, TaggedPacket, ()> for Hooked<H> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        self.hook.read(&mut msg);
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        self.hook.write(&mut msg);
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl<H: PacketHook> Interceptor for Hooked<H> {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.hook.bind_local_stream(info);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.hook.unbind_local_stream(info);
    }
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// The SSRCs of the local streams of one kind (`audio` or `video`), kept as they are bound.
pub(crate) struct LocalStreams {
    kind: &'static str,
    ssrcs: HashSet<u32>,
}

impl LocalStreams {
    /// None yet of `kind` (`audio` or `video`).
    pub(crate) fn of(kind: &'static str) -> Self {
        Self { kind, ssrcs: HashSet::new() }
    }

    /// Keeps a bound stream's SSRC if it is of this kind.
    pub(crate) fn bind(&mut self, info: &StreamInfo) {
        let mime = info.mime_type.to_ascii_lowercase();
        if mime.split('/').next() == Some(self.kind) {
            self.ssrcs.insert(info.ssrc);
        }
    }

    /// Forgets an unbound stream.
    pub(crate) fn unbind(&mut self, info: &StreamInfo) {
        self.ssrcs.remove(&info.ssrc);
    }

    /// Whether `ssrc` is one of them.
    pub(crate) fn contains(&self, ssrc: u32) -> bool {
        self.ssrcs.contains(&ssrc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_streams_keep_their_own_kind_only() {
        let stream =
            |ssrc, mime: &str| StreamInfo { ssrc, mime_type: mime.into(), ..Default::default() };
        let mut video = LocalStreams::of("video");
        video.bind(&stream(1, "video/H264"));
        video.bind(&stream(2, "audio/opus"));
        video.bind(&stream(3, "Video/VP8"));
        assert!(video.contains(1) && !video.contains(2) && video.contains(3));
        video.unbind(&stream(1, "video/H264"));
        assert!(!video.contains(1));
    }
}
