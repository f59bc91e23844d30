//! Preloaded (`LD_PRELOAD`) into every process of an app's sandbox, so that
//! the app finds its session's virtual gamepads where Linux puts pads, without
//! `/dev/uinput` and without any device of the host's.
//!
//! The host serves each pad's nodes as Unix seqpacket sockets in the
//! sandbox's `/dev/input` (see `gridplay-gamepad`). Opening such a node
//! connects to its socket instead: reads and polls then work as on the real
//! node, one event per packet. This library answers the node's ioctls from
//! the pad's description, and `stat` shows it as the character device Linux
//! would make. Every other path, descriptor and request goes straight to the
//! system call, untouched.
//!
//! The C prototypes of `open` and `ioctl` are variadic; the hooks take the
//! optional argument as a fixed one, which reads the same register under the
//! x86-64 and AArch64 Linux calling conventions.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::sync::atomic::{AtomicU8, Ordering};

use gridplay_gamepad::{Answer, Interface, Node, Request, answer, errno};
use libc::{c_char, c_int, c_ulong, c_void, mode_t};

/// Descriptors this library can remember (a byte each); a node opened at a
/// higher descriptor is refused with `EMFILE`.
const TRACKED: usize = 1 << 16;

/// What each descriptor is: 0 for anything else, `1 + pad` for an event
/// node, `1 + MAX_PADS + pad` for a joystick node.
static NODES: [AtomicU8; TRACKED] = [const { AtomicU8::new(0) }; TRACKED];

fn remember(fd: c_int, node: Option<Node>) {
    let code = match node {
        None => 0,
        Some(Node { interface: Interface::Evdev, pad }) => 1 + pad,
        Some(Node { interface: Interface::Joystick, pad }) => 1 + gridplay_gamepad::MAX_PADS + pad,
    };
    if let Some(slot) = usize::try_from(fd).ok().and_then(|fd| NODES.get(fd)) {
        slot.store(code, Ordering::Relaxed);
    }
}

fn node_of(fd: c_int) -> Option<Node> {
    let code = NODES.get(usize::try_from(fd).ok()?)?.load(Ordering::Relaxed);
    let pads = gridplay_gamepad::MAX_PADS;
    match code {
        0 => None,
        c if c <= pads => Some(Node { interface: Interface::Evdev, pad: c - 1 }),
        c => Some(Node { interface: Interface::Joystick, pad: c - 1 - pads }),
    }
}

fn fail(code: c_int) -> c_int {
    // SAFETY: errno is this thread's own.
    unsafe { *libc::__errno_location() = code };
    -1
}

fn node_at(path: *const c_char) -> Option<Node> {
    // SAFETY: a path given to open or stat is a C string, or null.
    (!path.is_null()).then(|| Node::at(unsafe { CStr::from_ptr(path) }.to_bytes()))?
}

/// Opens `path` relative to `dir`: a pad's node by connecting to its socket,
/// anything else with the system call.
unsafe fn open_at(dir: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    match node_at(path) {
        Some(node) => connect(path, node, flags),
        // SAFETY: the caller's arguments, passed on as they came.
        None => unsafe { libc::syscall(libc::SYS_openat, dir, path, flags, mode) as c_int },
    }
}

/// A seqpacket connection to the node's socket, as the node's descriptor.
fn connect(path: *const c_char, node: Node, flags: c_int) -> c_int {
    let mut kind = libc::SOCK_SEQPACKET;
    if flags & libc::O_CLOEXEC != 0 {
        kind |= libc::SOCK_CLOEXEC;
    }
    if flags & libc::O_NONBLOCK != 0 {
        kind |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: a zeroed sockaddr_un is valid; the node's path (at most
    // "/dev/input/event15") fits in its sun_path with room for the zero.
    unsafe {
        let mut address: libc::sockaddr_un = std::mem::zeroed();
        address.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = CStr::from_ptr(path).to_bytes_with_nul();
        for (to, &from) in address.sun_path.iter_mut().zip(bytes) {
            *to = from as c_char;
        }
        let length = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len();
        let fd = libc::socket(libc::AF_UNIX, kind, 0);
        if fd < 0 {
            return -1;
        }
        if usize::try_from(fd).map_or(true, |fd| fd >= TRACKED) {
            libc::syscall(libc::SYS_close, fd);
            return fail(libc::EMFILE);
        }
        let to = (&raw const address).cast::<libc::sockaddr>();
        if libc::connect(fd, to, length as libc::socklen_t) < 0 {
            let why = *libc::__errno_location();
            libc::syscall(libc::SYS_close, fd);
            // A pad that is gone, or going: as Linux says of an unplugged device.
            return fail(if why == libc::ENOENT { why } else { libc::ENODEV });
        }
        remember(fd, Some(node));
        fd
    }
}

/// `open(2)`.
///
/// # Safety
/// As `open(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: as the caller's.
    unsafe { open_at(libc::AT_FDCWD, path, flags, mode) }
}

/// `open64(2)`.
///
/// # Safety
/// As `open(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: as the caller's.
    unsafe { open_at(libc::AT_FDCWD, path, flags, mode) }
}

/// `openat(2)`.
///
/// # Safety
/// As `openat(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat(
    dir: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    // SAFETY: as the caller's.
    unsafe { open_at(dir, path, flags, mode) }
}

/// `openat64(2)`.
///
/// # Safety
/// As `openat(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat64(
    dir: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    // SAFETY: as the caller's.
    unsafe { open_at(dir, path, flags, mode) }
}

/// The fortified `open` of programs built with `_FORTIFY_SOURCE`.
///
/// # Safety
/// As `open(2)` without `O_CREAT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: as the caller's.
    unsafe { open_at(libc::AT_FDCWD, path, flags, 0) }
}

/// The fortified `open64`.
///
/// # Safety
/// As `open(2)` without `O_CREAT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: as the caller's.
    unsafe { open_at(libc::AT_FDCWD, path, flags, 0) }
}

/// The fortified `openat`.
///
/// # Safety
/// As `openat(2)` without `O_CREAT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __openat_2(dir: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: as the caller's.
    unsafe { open_at(dir, path, flags, 0) }
}

/// The fortified `openat64`.
///
/// # Safety
/// As `openat(2)` without `O_CREAT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __openat64_2(dir: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: as the caller's.
    unsafe { open_at(dir, path, flags, 0) }
}

/// `ioctl(2)`: a pad node's requests are answered from its description.
///
/// # Safety
/// As `ioctl(2)`: `argument` points at what `request` reads or writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, argument: *mut c_void) -> c_int {
    if let Some(node) = node_of(fd) {
        let request_parts = Request::of(request);
        let size = if request_parts.reads { request_parts.size } else { 0 };
        if size > 0 && argument.is_null() {
            return fail(errno::EFAULT);
        }
        let mut none = [];
        let out = if size > 0 {
            // SAFETY: the request says its argument holds `size` bytes.
            unsafe { std::slice::from_raw_parts_mut(argument.cast::<u8>(), size) }
        } else {
            &mut none[..]
        };
        match answer(node.interface, request_parts, out) {
            Answer::Done(value) => return value,
            Answer::Failed(code) => return fail(code),
            Answer::NotMine => {}
        }
    }
    // SAFETY: the caller's arguments, passed on as they came.
    unsafe { libc::syscall(libc::SYS_ioctl, fd, request, argument) as c_int }
}

/// `close(2)`: forgets what the descriptor was.
///
/// # Safety
/// As `close(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    remember(fd, None);
    // SAFETY: as the caller's.
    unsafe { libc::syscall(libc::SYS_close, fd) as c_int }
}

/// `dup2(2)`: the new descriptor is no longer what it was.
///
/// # Safety
/// As `dup2(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        // SAFETY: asks only whether `old` is open.
        return if unsafe { libc::fcntl(old, libc::F_GETFD) } < 0 { -1 } else { new };
    }
    // SAFETY: as the caller's.
    unsafe { dup3(old, new, 0) }
}

/// `dup3(2)`: the new descriptor is no longer what it was.
///
/// # Safety
/// As `dup3(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: as the caller's.
    let fd = unsafe { libc::syscall(libc::SYS_dup3, old, new, flags) as c_int };
    if fd >= 0 {
        remember(fd, node_of(old));
    }
    fd
}

/// Makes a pad node's socket look like the node Linux would make.
fn disguise(path: *const c_char, status: *mut libc::stat) {
    let Some(node) = node_at(path) else { return };
    // SAFETY: `status` was just filled by a successful stat.
    let status = unsafe { &mut *status };
    if status.st_mode & libc::S_IFMT == libc::S_IFSOCK {
        let (major, minor) = node.device_number();
        status.st_mode = libc::S_IFCHR | (status.st_mode & 0o7777);
        status.st_rdev = libc::makedev(major, minor);
    }
}

/// `stat` through the system call, then [`disguise`]d.
unsafe fn stat_disguised(path: *const c_char, status: *mut libc::stat) -> c_int {
    // SAFETY: as the caller's.
    let result =
        unsafe { libc::syscall(libc::SYS_newfstatat, libc::AT_FDCWD, path, status, 0) as c_int };
    if result == 0 {
        disguise(path, status);
    }
    result
}

/// `stat(2)`.
///
/// # Safety
/// As `stat(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stat(path: *const c_char, status: *mut libc::stat) -> c_int {
    // SAFETY: as the caller's.
    unsafe { stat_disguised(path, status) }
}

/// `stat64(2)` (the same structure on 64-bit Linux).
///
/// # Safety
/// As `stat(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stat64(path: *const c_char, status: *mut libc::stat) -> c_int {
    // SAFETY: as the caller's.
    unsafe { stat_disguised(path, status) }
}

/// `stat` as programs built against glibc before 2.33 call it.
///
/// # Safety
/// As `stat(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __xstat(
    _version: c_int,
    path: *const c_char,
    status: *mut libc::stat,
) -> c_int {
    // SAFETY: as the caller's.
    unsafe { stat_disguised(path, status) }
}

/// `stat64` as programs built against glibc before 2.33 call it.
///
/// # Safety
/// As `stat(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __xstat64(
    _version: c_int,
    path: *const c_char,
    status: *mut libc::stat,
) -> c_int {
    // SAFETY: as the caller's.
    unsafe { stat_disguised(path, status) }
}
