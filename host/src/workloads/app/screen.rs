//! The host's own connection to a session's display: it captures the
//! screen through MIT-SHM (the server writes each frame into memory shared
//! with the host, no copy over the socket) only when DAMAGE says something
//! changed or the cursor moved, draws the cursor in from XFixes, and injects
//! the player's input through XTEST.

use memmap2::MmapMut;
use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::damage::{self, ConnectionExt as _, ReportLevel};
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xfixes::ConnectionExt as _;
use x11rb::protocol::xproto::{ImageFormat, Window};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::{DefaultStream, RustConnection};
use x11rb_protocol::parse_display::ConnectAddress;

use super::display::Display;
use crate::HostError;

pub(super) fn x11(e: impl std::fmt::Display) -> HostError {
    HostError::App(format!("X11: {e}"))
}

/// A connection to `display`'s socket with its cookie.
pub(super) fn connect(display: &Display) -> Result<RustConnection, HostError> {
    let (stream, _) = DefaultStream::connect(&ConnectAddress::Socket(
        display.socket().to_string_lossy().into_owned(),
    ))
    .map_err(x11)?;
    RustConnection::connect_to_stream_with_auth_info(
        stream,
        0,
        b"MIT-MAGIC-COOKIE-1".to_vec(),
        display.cookie().to_vec(),
    )
    .map_err(x11)
}

/// A connection to one session's display.
pub struct Screen {
    pub(super) conn: RustConnection,
    pub(super) root: Window,
    pub(super) width: u16,
    pub(super) height: u16,
    segment: u32,
    pixels: MmapMut,
    damage: damage::Damage,
    /// Whether the screen changed since the last capture.
    damaged: bool,
    /// The cursor's position and image in the last capture.
    cursor: Option<(i16, i16, u32)>,
}

impl Screen {
    /// Connects to `display` with its cookie and sets up shared-memory capture.
    pub fn connect(display: &Display) -> Result<Self, HostError> {
        let conn = connect(display)?;
        let screen = &conn.setup().roots[0];
        let (root, width, height) = (screen.root, screen.width_in_pixels, screen.height_in_pixels);
        conn.shm_query_version().map_err(x11)?.reply().map_err(x11)?;
        conn.xfixes_query_version(5, 0).map_err(x11)?.reply().map_err(x11)?;
        conn.xtest_get_version(2, 2).map_err(x11)?.reply().map_err(x11)?;
        conn.damage_query_version(1, 1).map_err(x11)?.reply().map_err(x11)?;
        // One notification each time the screen goes from unchanged to changed.
        let damage = conn.generate_id().map_err(x11)?;
        conn.damage_create(damage, root, ReportLevel::NON_EMPTY)
            .map_err(x11)?
            .check()
            .map_err(x11)?;
        let size = usize::from(width) * usize::from(height) * 4;
        let memory = memfd_create("gridplay-capture", MemfdFlags::CLOEXEC).map_err(x11)?;
        ftruncate(&memory, size as u64).map_err(x11)?;
        let file = std::fs::File::from(memory);
        let pixels = map(&file)?;
        let segment = conn.generate_id().map_err(x11)?;
        let shared = file.try_clone()?;
        conn.shm_attach_fd(segment, shared, false).map_err(x11)?.check().map_err(x11)?;
        Ok(Self { conn, root, width, height, segment, pixels, damage, damaged: true, cursor: None })
    }

    /// The screen's size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (u32::from(self.width), u32::from(self.height))
    }

    /// Captures the screen with the cursor drawn in: tightly packed BGRX; `None` when
    /// nothing on it changed and the cursor stayed as it was since the last capture.
    pub fn capture(&mut self) -> Result<Option<&[u8]>, HostError> {
        let cursor = self.conn.xfixes_get_cursor_image().map_err(x11)?.reply().map_err(x11)?;
        // Every change the server made before that reply has been notified by now.
        while let Some(event) = self.conn.poll_for_event().map_err(x11)? {
            self.damaged |= matches!(event, Event::DamageNotify(_));
        }
        let pointer = (cursor.x, cursor.y, cursor.cursor_serial);
        if !self.damaged && self.cursor == Some(pointer) {
            return Ok(None);
        }
        if std::mem::take(&mut self.damaged) {
            // Changes from here on are notified again, and seen by the next capture.
            self.conn.damage_subtract(self.damage, 0u32, 0u32).map_err(x11)?;
        }
        self.conn
            .shm_get_image(
                self.root,
                0,
                0,
                self.width,
                self.height,
                !0,
                ImageFormat::Z_PIXMAP.into(),
                self.segment,
                0,
            )
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        let origin = (
            i32::from(cursor.x) - i32::from(cursor.xhot),
            i32::from(cursor.y) - i32::from(cursor.yhot),
        );
        let size = (u32::from(cursor.width), u32::from(cursor.height));
        let frame = self.size();
        draw_cursor(&mut self.pixels, frame, &cursor.cursor_image, origin, size);
        self.cursor = Some(pointer);
        Ok(Some(&self.pixels))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.conn.damage_destroy(self.damage);
        let _ = self.conn.shm_detach(self.segment);
        let _ = self.conn.flush();
    }
}

/// Maps the capture memory.
#[allow(unsafe_code)]
fn map(file: &std::fs::File) -> Result<MmapMut, HostError> {
    // SAFETY: the memfd is ours alone and never truncated after this; the X
    // server writes into it only during `shm_get_image`, while `capture`
    // holds `&mut self`, so no Rust reference reads it concurrently.
    unsafe { MmapMut::map_mut(file) }.map_err(HostError::Io)
}

/// Blends a premultiplied ARGB cursor image of `size` at `origin` onto a
/// BGRX frame of `frame` size, clipped to the frame.
fn draw_cursor(
    pixels: &mut [u8],
    frame: (u32, u32),
    cursor: &[u32],
    origin: (i32, i32),
    size: (u32, u32),
) {
    let (fw, fh) = (frame.0 as i32, frame.1 as i32);
    for cy in 0..size.1 as i32 {
        let y = origin.1 + cy;
        if !(0..fh).contains(&y) {
            continue;
        }
        for cx in 0..size.0 as i32 {
            let x = origin.0 + cx;
            let Some(&argb) = cursor.get((cy * size.0 as i32 + cx) as usize) else { return };
            let alpha = argb >> 24;
            if !(0..fw).contains(&x) || alpha == 0 {
                continue;
            }
            let at = ((y * fw + x) * 4) as usize;
            let Some(px) = pixels.get_mut(at..at + 3) else { return };
            for (channel, shift) in px.iter_mut().zip([0, 8, 16]) {
                let source = (argb >> shift) & 0xff;
                let blended = source + u32::from(*channel) * (255 - alpha) / 255;
                *channel = blended.min(255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_blends_premultiplied_and_clips_to_the_frame() {
        let mut frame = vec![100u8; 4 * 4 * 4];
        // 2x2 cursor: opaque red, half-transparent white, transparent, opaque blue.
        let cursor = [0xffff0000, 0x80808080, 0x00000000, 0xff0000ff];
        draw_cursor(&mut frame, (4, 4), &cursor, (3, 3), (2, 2));
        assert_eq!(&frame[(3 * 4 + 3) * 4..][..3], &[0, 0, 255], "BGR of opaque red");
        draw_cursor(&mut frame, (4, 4), &cursor, (-1, 0), (2, 2));
        // Only the right column lands: half white on (0,0), opaque blue on (0,1).
        assert_eq!(&frame[..3], &[128 + 49, 128 + 49, 128 + 49]);
        assert_eq!(&frame[4 * 4..][..3], &[255, 0, 0]);
        assert!(frame[4..16].iter().all(|&b| b == 100), "the rest of the row is untouched");
    }
}
