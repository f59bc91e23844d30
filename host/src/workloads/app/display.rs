//! A session's own X display: Xvfb at exactly the session's size, on a
//! display number it picks itself (`-displayfd`: the first whose abstract
//! socket it can bind, so concurrent starts never share one), on Unix
//! sockets only (no TCP; the abstract one lives in the host's network
//! namespace, which no sandbox shares), admitting only holders of the
//! session's own MIT-MAGIC-COOKIE-1.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HostError;

/// Longest wait for Xvfb to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running Xvfb; killed when dropped.
pub struct Display {
    child: Child,
    number: u32,
    cookie: [u8; 16],
}

impl Display {
    /// Starts Xvfb at `width`×`height`, its auth file at `auth_file`.
    pub fn start(width: u32, height: u32, auth_file: &Path) -> Result<Self, HostError> {
        let mut cookie = [0u8; 16];
        getrandom::getrandom(&mut cookie).map_err(|e| HostError::App(e.to_string()))?;
        std::fs::write(auth_file, xauthority(&cookie))?;
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-noreset"])
            .args(["-screen", "0", &format!("{width}x{height}x24")])
            .arg("-auth")
            .arg(auth_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| HostError::App(format!("could not start Xvfb (apt install xvfb): {e}")))?;
        // Xvfb writes its display number once it accepts connections.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let number = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
            .and_then(Result::ok)
            .and_then(|line| line.trim().parse::<u32>().ok());
        let Some(number) = number else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HostError::App("Xvfb did not start".into()));
        };
        Ok(Self { child, number, cookie })
    }

    /// The display number (`:N`).
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The display's Unix socket.
    pub fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/.X11-unix/X{}", self.number))
    }

    /// The session's cookie.
    pub fn cookie(&self) -> &[u8; 16] {
        &self.cookie
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An Xauthority file with one entry: any address, any display, `cookie`.
fn xauthority(cookie: &[u8; 16]) -> Vec<u8> {
    const FAMILY_WILD: u16 = 0xffff;
    let mut out = Vec::new();
    let mut field = |bytes: &[u8]| {
        out.write_all(&(bytes.len() as u16).to_be_bytes()).expect("writes to a Vec");
        out.write_all(bytes).expect("writes to a Vec");
    };
    field(&[]);
    field(b"");
    field(b"MIT-MAGIC-COOKIE-1");
    field(cookie);
    let mut file = FAMILY_WILD.to_be_bytes().to_vec();
    file.extend(out);
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xauthority_has_one_wildcard_entry() {
        let file = xauthority(&[7; 16]);
        assert_eq!(&file[..2], &[0xff, 0xff]);
        assert_eq!(&file[2..6], &[0, 0, 0, 0], "empty address and display");
        assert_eq!(&file[6..8], &[0, 18]);
        assert_eq!(&file[8..26], b"MIT-MAGIC-COOKIE-1");
        assert_eq!(&file[26..28], &[0, 16]);
        assert_eq!(&file[28..], &[7; 16]);
    }
}
