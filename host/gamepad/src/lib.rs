//! The virtual gamepad an app session sees, as Linux presents a wired Xbox 360
//! pad (the `xpad` driver's layout, which SDL and most games know): an evdev
//! node `/dev/input/eventN` and a joystick node `/dev/input/jsN` per pad.
//!
//! The host serves each node as a Unix seqpacket socket in the session's own
//! `/dev/input`, one event per packet; the library preloaded into the app's
//! sandbox connects to it when the app opens the node and answers the node's
//! ioctls from this description ([`answer`]). Only that session's processes
//! can see its pads.
//!
//! Nothing here touches the system: it is the description, the events a change
//! of state makes ([`changes`], [`evdev_event`], [`js_event`]) and the ioctl
//! answers, shared by the host and the preloaded library.

/// Most pads a session has (the input protocol's `MAX_GAMEPADS`).
pub const MAX_PADS: u8 = 16;

/// The name the pad reports (`EVIOCGNAME`, `JSIOCGNAME`).
pub const NAME: &str = "Gridplay Virtual Gamepad";

/// Bus, vendor, product and version (`EVIOCGID`): a wired Xbox 360 pad, so that
/// SDL's controller database maps it.
pub const ID: [u16; 4] = [0x0003, 0x045e, 0x028e, 0x0114];

/// Linux's `errno` values the answers use.
pub mod errno {
    /// No such entry (a pad has no physical path or unique id).
    pub const ENOENT: i32 = 2;
    /// Bad address.
    pub const EFAULT: i32 = 14;
    /// Not a request this node takes.
    pub const EINVAL: i32 = 22;
    /// Not supported (key repeat, force feedback).
    pub const ENOSYS: i32 = 38;
}

const EV_SYN: u16 = 0x00;
const EV_KEY: u16 = 0x01;
const EV_ABS: u16 = 0x03;
const SYN_REPORT: u16 = 0;

/// Buttons, in key code order (which is also their joystick numbering), each
/// with its bit in the W3C "standard" mapping.
const BUTTONS: [(u16, u32); 11] = [
    (0x130, 0),  // BTN_A: bottom face button
    (0x131, 1),  // BTN_B: right face button
    (0x133, 2),  // BTN_X: left face button
    (0x134, 3),  // BTN_Y: top face button
    (0x136, 4),  // BTN_TL: left bumper
    (0x137, 5),  // BTN_TR: right bumper
    (0x13a, 8),  // BTN_SELECT: back
    (0x13b, 9),  // BTN_START: start
    (0x13c, 16), // BTN_MODE: the guide button
    (0x13d, 10), // BTN_THUMBL: left stick pressed
    (0x13e, 11), // BTN_THUMBR: right stick pressed
];

/// One absolute axis: its code and range (`struct input_absinfo`'s minimum,
/// maximum, fuzz and flat).
#[derive(Debug, Clone, Copy)]
struct Axis {
    code: u16,
    min: i32,
    max: i32,
    fuzz: i32,
    flat: i32,
}

const fn stick(code: u16) -> Axis {
    Axis { code, min: -32768, max: 32767, fuzz: 16, flat: 128 }
}
const fn trigger(code: u16) -> Axis {
    Axis { code, min: 0, max: 255, fuzz: 0, flat: 0 }
}
const fn hat(code: u16) -> Axis {
    Axis { code, min: -1, max: 1, fuzz: 0, flat: 0 }
}

/// Axes in code order (their joystick numbering): left stick, left trigger,
/// right stick, right trigger, then the d-pad as a hat.
const AXES: [Axis; 8] = [
    stick(0x00),   // ABS_X
    stick(0x01),   // ABS_Y
    trigger(0x02), // ABS_Z
    stick(0x03),   // ABS_RX
    stick(0x04),   // ABS_RY
    trigger(0x05), // ABS_RZ
    hat(0x10),     // ABS_HAT0X
    hat(0x11),     // ABS_HAT0Y
];

/// D-pad bits of the standard mapping: up, down, left, right.
const DPAD: [u32; 4] = [12, 13, 14, 15];

/// A pad's whole state, as the player's input carries it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PadState {
    /// Pressed buttons: bit `i` is the W3C standard mapping's button `i`.
    pub buttons: u32,
    /// Left trigger, 0 released ..= 255 fully pressed.
    pub left_trigger: u8,
    /// Right trigger, 0 released ..= 255 fully pressed.
    pub right_trigger: u8,
    /// Left stick x, negative left.
    pub left_x: i16,
    /// Left stick y, negative up.
    pub left_y: i16,
    /// Right stick x, negative left.
    pub right_x: i16,
    /// Right stick y, negative up.
    pub right_y: i16,
}

impl PadState {
    fn pressed(&self, bit: u32) -> bool {
        self.buttons & (1 << bit) != 0
    }

    fn button(&self, i: usize) -> bool {
        self.pressed(BUTTONS[i].1)
    }

    fn axis(&self, i: usize) -> i32 {
        let hat = |minus, plus| i32::from(self.pressed(plus)) - i32::from(self.pressed(minus));
        match i {
            0 => self.left_x.into(),
            1 => self.left_y.into(),
            2 => self.left_trigger.into(),
            3 => self.right_x.into(),
            4 => self.right_y.into(),
            5 => self.right_trigger.into(),
            6 => hat(DPAD[2], DPAD[3]),
            _ => hat(DPAD[0], DPAD[1]),
        }
    }
}

/// One control's new value: a button (its index in joystick numbering) or an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Button `0` pressed (`true`) or released.
    Button(u8, bool),
    /// Axis `0` at its new value, in its own range.
    Axis(u8, i32),
}

/// What changed from `before` to `after`: buttons, then axes, in their order.
pub fn changes(before: &PadState, after: &PadState) -> Vec<Change> {
    let buttons = (0..BUTTONS.len())
        .filter(|&i| before.button(i) != after.button(i))
        .map(|i| Change::Button(i as u8, after.button(i)));
    let axes = (0..AXES.len())
        .filter(|&i| before.axis(i) != after.axis(i))
        .map(|i| Change::Axis(i as u8, after.axis(i)));
    buttons.chain(axes).collect()
}

/// Every control of `state`, as a joystick node reports them on open.
pub fn whole(state: &PadState) -> Vec<Change> {
    let buttons = (0..BUTTONS.len()).map(|i| Change::Button(i as u8, state.button(i)));
    let axes = (0..AXES.len()).map(|i| Change::Axis(i as u8, state.axis(i)));
    buttons.chain(axes).collect()
}

/// Size of `struct input_event` on 64-bit Linux.
pub const EVDEV_EVENT_SIZE: usize = 24;
/// Size of `struct js_event`.
pub const JS_EVENT_SIZE: usize = 8;

/// A change as an evdev `struct input_event` stamped `(seconds, microseconds)`.
pub fn evdev_event(change: Change, time: (i64, i64)) -> [u8; EVDEV_EVENT_SIZE] {
    let (kind, code, value) = match change {
        Change::Button(i, pressed) => (EV_KEY, BUTTONS[usize::from(i)].0, i32::from(pressed)),
        Change::Axis(i, value) => (EV_ABS, AXES[usize::from(i)].code, value),
    };
    input_event(time, kind, code, value)
}

/// The `SYN_REPORT` that closes a batch of evdev events.
pub fn evdev_sync(time: (i64, i64)) -> [u8; EVDEV_EVENT_SIZE] {
    input_event(time, EV_SYN, SYN_REPORT, 0)
}

fn input_event(time: (i64, i64), kind: u16, code: u16, value: i32) -> [u8; EVDEV_EVENT_SIZE] {
    let mut out = [0u8; EVDEV_EVENT_SIZE];
    out[0..8].copy_from_slice(&time.0.to_ne_bytes());
    out[8..16].copy_from_slice(&time.1.to_ne_bytes());
    out[16..18].copy_from_slice(&kind.to_ne_bytes());
    out[18..20].copy_from_slice(&code.to_ne_bytes());
    out[20..24].copy_from_slice(&value.to_ne_bytes());
    out
}

/// A change as a joystick `struct js_event` at `millis`; `initial` marks the
/// state a node reports on open (`JS_EVENT_INIT`). Axes are scaled to
/// -32767..=32767, as the kernel's joystick driver does.
pub fn js_event(change: Change, millis: u32, initial: bool) -> [u8; JS_EVENT_SIZE] {
    const BUTTON: u8 = 0x01;
    const AXIS: u8 = 0x02;
    const INIT: u8 = 0x80;
    let (kind, number, value) = match change {
        Change::Button(i, pressed) => (BUTTON, i, i16::from(pressed)),
        Change::Axis(i, value) => {
            let axis = AXES[usize::from(i)];
            let span = i64::from(axis.max - axis.min);
            let scaled = (i64::from(value.clamp(axis.min, axis.max) - axis.min) * 65534 + span / 2)
                / span
                - 32767;
            (AXIS, i, scaled as i16)
        }
    };
    let mut out = [0u8; JS_EVENT_SIZE];
    out[0..4].copy_from_slice(&millis.to_ne_bytes());
    out[4..6].copy_from_slice(&value.to_ne_bytes());
    out[6] = kind | if initial { INIT } else { 0 };
    out[7] = number;
    out
}

/// Which of a pad's two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// `/dev/input/eventN`: the event interface, which SDL and most games read.
    Evdev,
    /// `/dev/input/jsN`: the older joystick interface.
    Joystick,
}

/// A pad's node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Its interface.
    pub interface: Interface,
    /// The pad, `0..MAX_PADS`.
    pub pad: u8,
}

/// The directory the nodes are in, as the app sees it.
pub const DIRECTORY: &str = "/dev/input";

impl Node {
    /// The node at `path`, when it is a pad's node in [`DIRECTORY`].
    pub fn at(path: &[u8]) -> Option<Self> {
        let name = path.strip_prefix(DIRECTORY.as_bytes())?.strip_prefix(b"/")?;
        let (interface, number) = if let Some(n) = name.strip_prefix(b"event") {
            (Interface::Evdev, n)
        } else {
            (Interface::Joystick, name.strip_prefix(b"js")?)
        };
        let digits =
            !number.is_empty() && number.len() <= 2 && number.iter().all(u8::is_ascii_digit);
        let pad = std::str::from_utf8(number).ok().filter(|_| digits)?.parse::<u8>().ok()?;
        (pad < MAX_PADS && (number.len() == 1 || number[0] != b'0'))
            .then_some(Self { interface, pad })
    }

    /// The node's file name in [`DIRECTORY`].
    pub fn file_name(&self) -> String {
        match self.interface {
            Interface::Evdev => format!("event{}", self.pad),
            Interface::Joystick => format!("js{}", self.pad),
        }
    }

    /// The device number Linux gives such a node: major 13, minor 64 + N for
    /// events and N for joysticks.
    pub fn device_number(&self) -> (u32, u32) {
        match self.interface {
            Interface::Evdev => (13, 64 + u32::from(self.pad)),
            Interface::Joystick => (13, u32::from(self.pad)),
        }
    }
}

/// What an ioctl on a node comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Done: the ioctl returns this.
    Done(i32),
    /// Refused with this `errno`.
    Failed(i32),
    /// Not an input request: for the socket itself (`FIONBIO`, `FIONREAD`…).
    NotMine,
}

/// The parts of an ioctl request number.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// `_IOC_NR`.
    nr: u8,
    /// `_IOC_TYPE`.
    kind: u8,
    /// `_IOC_SIZE`: the bytes its argument points at.
    pub size: usize,
    /// Whether the request reads into its argument (`_IOC_READ`).
    pub reads: bool,
}

impl Request {
    /// Splits a request number.
    pub fn of(request: u64) -> Self {
        Self {
            nr: request as u8,
            kind: (request >> 8) as u8,
            size: ((request >> 16) & 0x3fff) as usize,
            reads: (request >> 30) & 2 != 0,
        }
    }
}

/// The bytes of the bitmaps evdev reports (the kernel's `long` arrays on 64-bit).
const EV_BYTES: usize = 8;
const KEY_BYTES: usize = 96;
const FF_BYTES: usize = 16;

/// Answers `request` on a node of `interface`, writing what it reads into
/// `out` (its argument, `request.size` bytes when it reads, else empty), as
/// Linux's `evdev` and `joydev` drivers answer for an `xpad` pad at rest.
/// The current state is not in the answers: the host sends it as events
/// right after a node is opened.
pub fn answer(interface: Interface, request: Request, out: &mut [u8]) -> Answer {
    match (interface, request.kind) {
        (Interface::Evdev, b'E') => evdev(request, out),
        (Interface::Joystick, b'j') => joystick(request, out),
        (_, b'E' | b'j') => Answer::Failed(errno::EINVAL),
        _ => Answer::NotMine,
    }
}

fn evdev(request: Request, out: &mut [u8]) -> Answer {
    use Answer::{Done, Failed};
    let read = request.reads;
    match request.nr {
        0x01 if read => put(out, &0x0001_0001_i32.to_ne_bytes()),
        0x02 if read => put(out, &ID.iter().flat_map(|v| v.to_ne_bytes()).collect::<Vec<_>>()),
        0x06 if read => name(out),
        0x07 | 0x08 if read => Failed(errno::ENOENT),
        0x09 if read => bits(out, EV_BYTES, &[]),
        // Keys, LEDs, sounds and switches now: none held (the state follows as events).
        0x18 if read => bits(out, KEY_BYTES, &[]),
        0x19..=0x1b if read => bits(out, EV_BYTES, &[]),
        0x20..=0x3f if read => match u16::from(request.nr - 0x20) {
            0 => bits(out, EV_BYTES, &[EV_SYN, EV_KEY, EV_ABS]),
            EV_KEY => bits(out, KEY_BYTES, &BUTTONS.map(|(code, _)| code)),
            EV_ABS => bits(out, EV_BYTES, &AXES.map(|a| a.code)),
            0x02 | 0x04 | 0x05 | 0x11 | 0x12 => bits(out, EV_BYTES, &[]),
            0x15 => bits(out, FF_BYTES, &[]),
            _ => Failed(errno::EINVAL),
        },
        0x40..=0x7f if read => {
            let code = u16::from(request.nr - 0x40);
            let info = AXES
                .iter()
                .find(|a| a.code == code)
                .map_or([0; 6], |a| [0, a.min, a.max, a.fuzz, a.flat, 0]);
            put(out, &info.iter().flat_map(|v| v.to_ne_bytes()).collect::<Vec<_>>())
        }
        // Setting an axis's range: kept as it is.
        0xc0..=0xff => Done(0),
        // Key repeat and force feedback: this pad has neither.
        0x03 | 0x80 | 0x81 => Failed(errno::ENOSYS),
        0x84 if read => put(out, &0_i32.to_ne_bytes()),
        // Grab, revoke, event masks, clock: nothing else reads these nodes.
        0x90..=0x93 | 0xa0 => Done(0),
        _ => Failed(errno::EINVAL),
    }
}

fn joystick(request: Request, out: &mut [u8]) -> Answer {
    use Answer::{Done, Failed};
    let read = request.reads;
    match request.nr {
        0x01 if read => put(out, &0x0002_0100_u32.to_ne_bytes()),
        0x11 if read => put(out, &[AXES.len() as u8]),
        0x12 if read => put(out, &[BUTTONS.len() as u8]),
        0x13 if read => name(out),
        // Corrections: none; setting them or the maps changes nothing.
        0x22 if read => put(out, &[]),
        0x21 | 0x31 | 0x33 => Done(0),
        0x32 if read => put(out, &AXES.map(|a| a.code as u8)),
        0x34 if read => {
            put(out, &BUTTONS.iter().flat_map(|(code, _)| code.to_ne_bytes()).collect::<Vec<_>>())
        }
        _ => Failed(errno::EINVAL),
    }
}

/// Copies `bytes` into `out`, zeroing the rest.
fn put(out: &mut [u8], bytes: &[u8]) -> Answer {
    let n = bytes.len().min(out.len());
    out[..n].copy_from_slice(&bytes[..n]);
    out[n..].fill(0);
    Answer::Done(0)
}

/// The name, cut to `out` with its terminating zero if it fits; returns its length.
fn name(out: &mut [u8]) -> Answer {
    let mut bytes = NAME.as_bytes().to_vec();
    bytes.push(0);
    let n = bytes.len().min(out.len());
    out[..n].copy_from_slice(&bytes[..n]);
    Answer::Done(n as i32)
}

/// A bitmap of `size` bytes with `set` bits, cut to `out`; returns the bytes written.
fn bits(out: &mut [u8], size: usize, set: &[u16]) -> Answer {
    let n = size.min(out.len());
    out[..n].fill(0);
    for &bit in set {
        if let Some(byte) = out[..n].get_mut(usize::from(bit / 8)) {
            *byte |= 1 << (bit % 8);
        }
    }
    Answer::Done(n as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `_IOC(dir, type, nr, size)`.
    fn ioc(read: bool, kind: u8, nr: u8, size: usize) -> Request {
        let dir = if read { 2u64 } else { 1 };
        Request::of(dir << 30 | (size as u64) << 16 | u64::from(kind) << 8 | u64::from(nr))
    }

    fn bit(bytes: &[u8], n: u16) -> bool {
        bytes[usize::from(n / 8)] & (1 << (n % 8)) != 0
    }

    #[test]
    fn nodes_are_named_as_linux_names_them() {
        let node = Node::at(b"/dev/input/event3").unwrap();
        assert_eq!(node, Node { interface: Interface::Evdev, pad: 3 });
        assert_eq!(node.file_name(), "event3");
        assert_eq!(node.device_number(), (13, 67));
        assert_eq!(Node::at(b"/dev/input/js15").unwrap().device_number(), (13, 15));
        for path in [
            &b"/dev/input/js16"[..],
            b"/dev/input/event",
            b"/dev/input/event03",
            b"/dev/input/event-1",
            b"/dev/input/mice",
            b"/dev/input/by-id/event1",
            b"/dev/inputs/event1",
            b"event1",
        ] {
            assert_eq!(Node::at(path), None, "{}", String::from_utf8_lossy(path));
        }
    }

    #[test]
    fn a_changed_state_makes_one_event_per_control_that_moved() {
        let before = PadState::default();
        let after = PadState {
            buttons: 1 | 1 << 16 | 1 << 12 | 1 << 15,
            right_trigger: 255,
            left_x: -32767,
            ..before
        };
        let moved = changes(&before, &after);
        assert_eq!(
            moved,
            [
                Change::Button(0, true),
                Change::Button(8, true),
                Change::Axis(0, -32767),
                Change::Axis(5, 255),
                Change::Axis(6, 1),
                Change::Axis(7, -1),
            ]
        );
        assert!(changes(&after, &after).is_empty());
        // The bumpers' and triggers' digital bits move nothing of their own.
        let triggers = PadState { buttons: 1 << 6 | 1 << 7, ..before };
        assert!(changes(&before, &triggers).is_empty());
        assert_eq!(whole(&after).len(), BUTTONS.len() + AXES.len());
    }

    #[test]
    fn events_have_the_kernels_layout() {
        let event = evdev_event(Change::Button(0, true), (7, 9));
        assert_eq!(i64::from_ne_bytes(event[0..8].try_into().unwrap()), 7);
        assert_eq!(i64::from_ne_bytes(event[8..16].try_into().unwrap()), 9);
        assert_eq!(u16::from_ne_bytes([event[16], event[17]]), EV_KEY);
        assert_eq!(u16::from_ne_bytes([event[18], event[19]]), 0x130);
        assert_eq!(i32::from_ne_bytes(event[20..24].try_into().unwrap()), 1);
        assert_eq!(&evdev_sync((7, 9))[16..], &[0; 8]);
        let js = |change, init| {
            let e = js_event(change, 5, init);
            (i16::from_ne_bytes([e[4], e[5]]), e[6], e[7])
        };
        assert_eq!(js(Change::Axis(2, 255), false), (32767, 0x02, 2));
        assert_eq!(js(Change::Axis(2, 0), false), (-32767, 0x02, 2));
        assert_eq!(js(Change::Axis(0, -32768), false).0, -32767);
        assert_eq!(js(Change::Axis(0, 0), false).0, 0);
        assert_eq!(js(Change::Axis(7, -1), false).0, -32767);
        assert_eq!(js(Change::Button(10, true), true), (1, 0x81, 10));
    }

    #[test]
    fn evdev_ioctls_describe_an_xpad_pad() {
        let mut out = [0xffu8; 256];
        let ask =
            |nr, size, out: &mut [u8]| answer(Interface::Evdev, ioc(true, b'E', nr, size), out);
        assert_eq!(ask(0x06, 8, &mut out[..8]), Answer::Done(8));
        assert_eq!(&out[..8], b"Gridplay", "cut to the buffer, without its zero");
        assert_eq!(ask(0x06, 256, &mut out), Answer::Done(NAME.len() as i32 + 1));
        assert_eq!(ask(0x02, 8, &mut out[..8]), Answer::Done(0));
        assert_eq!(u16::from_ne_bytes([out[2], out[3]]), 0x045e);
        assert_eq!(ask(0x20, 8, &mut out[..8]), Answer::Done(8));
        assert!(
            bit(&out, EV_KEY) && bit(&out, EV_ABS) && !bit(&out, 0x02),
            "keys, axes, no motion"
        );
        assert_eq!(ask(0x21, 256, &mut out), Answer::Done(KEY_BYTES as i32));
        assert!(bit(&out, 0x130) && bit(&out, 0x13e) && !bit(&out, 0x132) && !bit(&out, 0x110));
        assert_eq!(ask(0x23, 4, &mut out[..4]), Answer::Done(4), "cut to the buffer");
        assert!(bit(&out, 0x00) && bit(&out, 0x05) && !bit(&out, 0x06));
        assert_eq!(ask(0x40 + 0x02, 24, &mut out[..24]), Answer::Done(0));
        let info: Vec<i32> =
            out[..24].chunks(4).map(|c| i32::from_ne_bytes(c.try_into().unwrap())).collect();
        assert_eq!(info, [0, 0, 255, 0, 0, 0], "a trigger's range");
        assert_eq!(ask(0x07, 64, &mut out[..64]), Answer::Failed(errno::ENOENT));
        let rumble = answer(Interface::Evdev, ioc(false, b'E', 0x80, 48), &mut []);
        assert_eq!(rumble, Answer::Failed(errno::ENOSYS));
        assert_eq!(ask(0x3f, 8, &mut out[..8]), Answer::Failed(errno::EINVAL));
        // A joystick request on an event node fails as Linux fails it; the
        // socket's own requests are the socket's.
        assert_eq!(ask_js(Interface::Evdev, 0x13, 64, &mut out), Answer::Failed(errno::EINVAL));
        let fionbio = Request::of(0x5421);
        assert_eq!(answer(Interface::Evdev, fionbio, &mut []), Answer::NotMine);
    }

    fn ask_js(interface: Interface, nr: u8, size: usize, out: &mut [u8]) -> Answer {
        answer(interface, ioc(true, b'j', nr, size), &mut out[..size])
    }

    #[test]
    fn joystick_ioctls_count_and_map_the_controls() {
        let mut out = [0xffu8; 1024];
        assert_eq!(ask_js(Interface::Joystick, 0x11, 1, &mut out), Answer::Done(0));
        assert_eq!(out[0], 8);
        assert_eq!(ask_js(Interface::Joystick, 0x12, 1, &mut out), Answer::Done(0));
        assert_eq!(out[0], 11);
        assert_eq!(ask_js(Interface::Joystick, 0x32, 64, &mut out), Answer::Done(0));
        assert_eq!(&out[..9], &[0, 1, 2, 3, 4, 5, 0x10, 0x11, 0]);
        assert_eq!(ask_js(Interface::Joystick, 0x34, 1024, &mut out), Answer::Done(0));
        assert_eq!(u16::from_ne_bytes([out[16], out[17]]), 0x13c, "button 8 is the guide");
        assert_eq!(ask_js(Interface::Joystick, 0x13, 128, &mut out), Answer::Done(25));
        assert_eq!(ask_js(Interface::Joystick, 0x06, 64, &mut out), Answer::Failed(errno::EINVAL));
    }
}
