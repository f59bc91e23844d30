//! Catalogue apps end to end on loopback, with the real parts: Xvfb,
//! bubblewrap and xterm from Debian, captured over MIT-SHM, encoded with
//! openh264 in each session's own worker process and played by a QUIC
//! player. Keys typed by the player reach the app; an app that exits or
//! crashes, or a worker that is killed, ends only its own session, with its
//! reason, while another plays on at full rate; nothing a session started
//! outlives it.

use std::collections::HashSet;
use std::path::Path;

use gridplay_host::catalogue::{Catalogue, SANDBOX_PATH, find_program};
use gridplay_protocol::input::{InputEvent, InputKind, gamepad_button};
use gridplay_protocol::probe::HostProbeMessage;
use gridplay_protocol::quic::{JoinRole, VideoCarriage};
use gridplay_protocol::{AllocateResponse, SessionState};
use gridplay_streaming::audio::{SAMPLE_RATE, tone_power};
use gridplay_streaming::quic::{JoinOptions, QuicViewer};

mod common;
use common::*;

/// The tests look at the whole machine's processes: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Three apps: one checks what was typed into its terminal and exits with
/// the verdict, one stays up until it is killed, one waits to be crashed.
const CATALOGUE: &str = r#"
[[app]]
id = "typing"
name = "Typing"
command = ["sh", "-c", "xterm -geometry 200x60+0+0 -e sh -c 'read line; echo \"$line\" > \"$HOME/typed\"'; test \"$(cat \"$HOME/typed\")\" = 'gridplay 42'"]
profile = "game"

[[app]]
id = "terminal"
name = "Terminal"
command = ["xterm", "-geometry", "200x60+0+0"]
profile = "game"

[[app]]
id = "victim"
name = "Victim"
command = ["xterm", "-title", "gridplay-victim"]
profile = "game"
"#;

/// Live processes a test cares about: display servers, sandboxes and apps
/// (a zombie has ended; only its exit status waits for the system to collect it).
fn session_processes() -> HashSet<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return HashSet::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(')')?;
            let running = rest.split_whitespace().next() != Some("Z");
            let ours = ["Xvfb", "bwrap", "xterm", "slirp4netns", "python3"].contains(&name);
            (running && ours).then(|| (pid, name.to_owned()))
        })
        .collect()
}

/// Session directories and control groups.
fn session_dirs() -> HashSet<String> {
    let groups = ["pids", "memory", "cpu", ""].map(|c| format!("/sys/fs/cgroup/{c}/gridplay"));
    let places = [std::env::temp_dir().to_string_lossy().into_owned()].into_iter().chain(groups);
    places
        .filter_map(|place| Some((std::fs::read_dir(&place).ok()?, place)))
        .flat_map(|(entries, place)| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| name.starts_with("gridplay-app-"))
                .map(move |name| format!("{place}/{name}"))
        })
        .collect()
}

async fn play(net: &Network, app: &str) -> (AllocateResponse, QuicViewer, Watch) {
    play_with(net, serde_json::json!({ "app": app })).await
}

/// A broker and a host offering the apps of `toml` (a catalogue) besides Orbit, each
/// session in a worker.
async fn network_of(toml: &str) -> Network {
    let which = |name: &str| find_program(name, SANDBOX_PATH);
    let catalogue = Catalogue::parse(Path::new("test.toml"), toml, &which).unwrap();
    Network::start_with_workers(catalogue).await
}

/// Allocates a session with `request` fields over the defaults and joins it as its QUIC
/// player, sound included.
async fn play_with(
    net: &Network,
    request: serde_json::Value,
) -> (AllocateResponse, QuicViewer, Watch) {
    let session = net.allocate_with(request).await;
    let endpoint = session.quic.as_ref().expect("a QUIC endpoint");
    let options = JoinOptions {
        token: session.token.clone(),
        role: JoinRole::Player,
        video: VideoCarriage::Streams,
        sound: true,
    };
    let (viewer, _, events) =
        QuicViewer::connect(endpoint.addr.parse().unwrap(), &endpoint.cert_sha256, &options)
            .await
            .unwrap();
    let mut watch = Watch::new(events);
    watch.orbit = false;
    (session, viewer, watch)
}

/// Waits for the host's word that the session ended; returns its reason.
async fn end_reason(watch: &mut Watch) -> String {
    let ended = |m: &HostProbeMessage| match m {
        HostProbeMessage::Ended { reason } => Some(reason.clone()),
        _ => None,
    };
    watch
        .until("the session's end", |w, _| w.probe_messages.iter().any(|m| ended(m).is_some()))
        .await;
    watch.probe_messages.iter().find_map(ended).unwrap()
}

/// Mean brightness of a picture, 0..=1.
fn brightness(picture: &gridplay_streaming::DecodedFrame) -> f64 {
    let sum: u64 = picture.rgba.chunks_exact(4).map(|p| u64::from(p[1])).sum();
    sum as f64 / (picture.rgba.len() / 4) as f64 / 255.0
}

fn key(seq: u32, code: &str, down: bool) -> Vec<u8> {
    let code = code.to_owned();
    let kind = if down { InputKind::KeyDown { code } } else { InputKind::KeyUp { code } };
    InputEvent { seq, kind }.encode().unwrap()
}

/// Types `text` (lower-case letters, digits, spaces) then Enter.
fn type_line(viewer: &QuicViewer, seq: &mut u32, text: &str) {
    let codes = text.chars().map(|c| match c {
        ' ' => "Space".to_owned(),
        c if c.is_ascii_digit() => format!("Digit{c}"),
        c => format!("Key{}", c.to_ascii_uppercase()),
    });
    for code in codes.chain(["Enter".to_owned()]) {
        for down in [true, false] {
            *seq += 1;
            viewer.send_input(&key(*seq, &code, down)).unwrap();
        }
    }
}

/// The victim app's xterm, once it runs.
async fn victim_pid() -> u32 {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match pid_of_title("gridplay-victim") {
                Some(pid) => return pid,
                None => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    });
    found.await.expect("the victim's xterm runs")
}

fn pid_of_title(title: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.filter_map(Result::ok).find_map(|e| {
        let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "xterm" && String::from_utf8_lossy(&cmdline).contains(title)).then_some(pid)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_stream_take_keys_end_with_their_reason_and_leave_nothing_behind() {
    let _serial = SERIAL.lock().await;
    for program in ["Xvfb", "bwrap", "xterm"] {
        assert!(
            find_program(program, SANDBOX_PATH).is_some(),
            "{program} is missing: apt-get install xvfb bubblewrap xterm"
        );
    }
    let (processes_before, dirs_before) = (session_processes(), session_dirs());
    let net = network_of(CATALOGUE).await;

    // A terminal that stays up, playing throughout.
    let (terminal, _terminal_viewer, mut terminal_watch) = play(&net, "terminal").await;
    let first = terminal_watch.picture().await;
    assert_eq!((first.width, first.height), (640, 360));
    net.wait_for_state(&terminal.session_id, SessionState::Running).await;

    // Keys typed by the player reach the app, whose exit ends the session.
    let (typing, typing_viewer, mut typing_watch) = play(&net, "typing").await;
    // Type once the terminal shows (white over the display's black).
    let picture = typing_watch
        .until("the terminal's window", |_, p| p.is_some_and(|p| brightness(p) > 0.5))
        .await
        .unwrap();
    let luma: HashSet<u8> = picture.rgba.chunks_exact(4).map(|p| p[1] / 32).collect();
    assert!(luma.len() > 1, "the terminal shows text");
    let mut seq = 0;
    let to_corner = InputKind::PointerMove { x: 3000, y: 3000, dx: 0, dy: 0 };
    seq += 1;
    typing_viewer.send_input(&InputEvent { seq, kind: to_corner }.encode().unwrap()).unwrap();
    type_line(&typing_viewer, &mut seq, "gridplay 42");
    assert_eq!(end_reason(&mut typing_watch).await, "app exited (status 0)");
    net.wait_for_state(&typing.session_id, SessionState::Ended).await;

    // An app that crashes ends its session with the signal; the terminal plays on.
    let (victim, _victim_viewer, mut victim_watch) = play(&net, "victim").await;
    victim_watch.picture().await;
    let pid = victim_pid().await;
    let killed = std::process::Command::new("kill").args(["-SEGV", &pid.to_string()]).status();
    assert!(killed.unwrap().success());
    assert_eq!(end_reason(&mut victim_watch).await, "app exited (killed by signal 11)");
    net.wait_for_state(&victim.session_id, SessionState::Ended).await;
    for _ in 0..10 {
        terminal_watch.picture().await;
    }

    // Ending the terminal's session leaves no process, display or directory.
    let delete = net.http.delete(format!("{}/v1/sessions/{}", net.broker, terminal.session_id));
    delete.bearer_auth(&terminal.token).send().await.unwrap();
    assert_eq!(end_reason(&mut terminal_watch).await, "session ended");
    let left: Vec<_> = session_processes().difference(&processes_before).cloned().collect();
    assert!(left.is_empty(), "left running: {left:?}");
    assert_eq!(session_dirs(), dirs_before, "session directories left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_still_screen_is_repeated_without_encoding_and_keeps_its_keyframes() {
    let _serial = SERIAL.lock().await;
    let net = network_of(CATALOGUE).await;
    let (_session, viewer, mut watch) = play(&net, "terminal").await;
    watch.until("the terminal's window", |_, p| p.is_some_and(|p| brightness(p) > 0.5)).await;

    // From one keyframe to the next, the terminal is still: frames keep coming at the
    // stream's rate, each a repeat of a few bytes that still decodes to a picture.
    let start = watch.frames.len();
    let keyframes = |w: &Watch| w.frames[start..].iter().filter(|f| f.keyframe).count();
    watch.until("two keyframes", |w, _| keyframes(w) >= 2).await;
    let still: Vec<Received> =
        watch.frames[start..].iter().copied().skip_while(|f| !f.keyframe).collect();
    let between = &still[1..still.len() - 1];
    assert!(
        (29..60).contains(&between.len()),
        "a keyframe every 2 s of 30 fps, repeats counted: {} frames between",
        between.len()
    );
    let repeats = between.iter().filter(|f| f.size < 32).count();
    assert!(repeats + 2 >= between.len(), "{repeats} of {} frames repeated", between.len());
    assert!(still.iter().all(|f| f.decoded), "every frame is a picture: {still:?}");

    // A key typed changes the screen: the next frames are encoded again.
    let typed = watch.frames.len();
    for (seq, down) in [(1, true), (2, false)] {
        viewer.send_input(&key(seq, "KeyG", down)).unwrap();
    }
    watch
        .until("an encoded frame of the typed key", |w, _| {
            w.frames[typed..].iter().any(|f| !f.keyframe && f.size > 64)
        })
        .await;
}

/// Exits 0 when the sandbox's network is what `network` promises: none at
/// all, or a default route out, and never the host's loopback (port in argv[1]).
const NETWORK_CHECK: &str = r#"
import socket, sys
port, network = int(sys.argv[1]), sys.argv[2]
interfaces = [l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]]
routes = [l.split()[1] for l in open('/proc/net/route').readlines()[1:]]
if network == 'none' and interfaces != ['lo']:
    sys.exit(10)
if network == 'internet' and '00000000' not in routes:
    sys.exit(11)
for host in ['127.0.0.1', '10.0.2.2']:
    try:
        socket.create_connection((host, port), timeout=2).close()
        sys.exit(12)
    except OSError:
        pass
sys.exit(0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_have_no_network_or_only_the_internet_never_the_hosts_loopback() {
    let _serial = SERIAL.lock().await;
    let (processes_before, dirs_before) = (session_processes(), session_dirs());
    // A service on the host's loopback, like its broker, Redis or anvil.
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = service.local_addr().unwrap().port();
    let mut catalogue = String::new();
    for network in ["none", "internet"] {
        let script = NETWORK_CHECK.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        catalogue += &format!(
            "[[app]]\nid = \"net-{network}\"\nname = \"N\"\nprofile = \"game\"\nnetwork = \"{network}\"\n\
             command = [\"python3\", \"-c\", \"{script}\", \"{port}\", \"{network}\"]\n"
        );
    }
    let net = network_of(&catalogue).await;
    for network in ["none", "internet"] {
        let (_, _viewer, mut watch) = play(&net, &format!("net-{network}")).await;
        assert_eq!(end_reason(&mut watch).await, "app exited (status 0)", "network = {network}");
    }
    drop(service);
    let left: Vec<_> = session_processes().difference(&processes_before).cloned().collect();
    assert!(left.is_empty(), "left running: {left:?}");
    assert_eq!(session_dirs(), dirs_before, "session directories left behind");
}

/// The session's worker processes running now (children of this test).
fn workers() -> HashSet<u32> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return HashSet::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let Some((name, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(')'))
            else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            name.starts_with("gridplay-worker")
                && fields.first() != Some(&"Z")
                && fields.get(1) == Some(&me.as_str())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_or_a_crashed_app_ends_only_its_own_session() {
    let _serial = SERIAL.lock().await;
    let (processes_before, dirs_before) = (session_processes(), session_dirs());
    let net = network_of(CATALOGUE).await;

    let (doomed, _doomed_viewer, mut doomed_watch) = play(&net, "terminal").await;
    doomed_watch.picture().await;
    let doomed_worker = workers().into_iter().next().expect("the terminal's worker runs");
    let (victim, _victim_viewer, mut victim_watch) = play(&net, "victim").await;
    victim_watch.picture().await;
    let (orbit, orbit_viewer, mut orbit_watch) =
        play_with(&net, serde_json::json!({ "fps": 60 })).await;
    orbit_watch.orbit = true;
    for _ in 0..30 {
        orbit_watch.picture().await;
    }

    // The terminal's worker is killed outright; the victim's app crashes.
    let pid = victim_pid().await;
    for (signal, target) in [("-KILL", doomed_worker), ("-SEGV", pid)] {
        let sent = std::process::Command::new("kill").args([signal, &target.to_string()]).status();
        assert!(sent.unwrap().success());
    }
    // Three seconds of Orbit, from the first picture after the kills to the last.
    orbit_watch.picture().await;
    let started = std::time::Instant::now();
    for _ in 0..180 {
        orbit_watch.picture().await;
    }
    let fps = 180.0 / started.elapsed().as_secs_f64();
    assert!(fps >= 55.0, "Orbit played on at {fps:.1} fps");
    assert_eq!(end_reason(&mut doomed_watch).await, "the session's worker killed by signal 9");
    assert_eq!(end_reason(&mut victim_watch).await, "app exited (killed by signal 11)");
    for session in [&doomed, &victim] {
        net.wait_for_state(&session.session_id, SessionState::Ended).await;
    }
    net.wait_for_state(&orbit.session_id, SessionState::Running).await;
    drop(orbit_viewer);
    net.wait_for_state(&orbit.session_id, SessionState::Ended).await;
    let left: Vec<_> = session_processes().difference(&processes_before).cloned().collect();
    assert!(left.is_empty(), "left running: {left:?}");
    assert_eq!(session_dirs(), dirs_before, "session directories left behind");
    assert!(workers().is_empty(), "workers outlived their sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sessions_started_and_ended_leave_nothing_behind() {
    let _serial = SERIAL.lock().await;
    let (processes_before, dirs_before) = (session_processes(), session_dirs());
    let net = network_of(CATALOGUE).await;
    // Ten rounds of two at once: one ended by its player leaving, one by the broker.
    for _ in 0..10 {
        let (left, left_viewer, mut left_watch) = play(&net, "terminal").await;
        let (ended, _ended_viewer, mut ended_watch) = play(&net, "terminal").await;
        left_watch.picture().await;
        ended_watch.picture().await;
        left_viewer.close().await;
        let delete = net.http.delete(format!("{}/v1/sessions/{}", net.broker, ended.session_id));
        delete.bearer_auth(&ended.token).send().await.unwrap();
        assert_eq!(end_reason(&mut ended_watch).await, "session ended");
        net.wait_for_state(&left.session_id, SessionState::Ended).await;
    }
    // The host reports a session ended once it has wound it down.
    assert!(workers().is_empty(), "workers outlived their sessions");
    let left: Vec<_> = session_processes().difference(&processes_before).cloned().collect();
    assert!(left.is_empty(), "left running: {left:?}");
    assert_eq!(session_dirs(), dirs_before, "session directories left behind");
}

/// An app that copies a line, then waits for the player's clipboard to hold
/// "from the page" (as CLIPBOARD and PRIMARY) and copies back what it got.
const CLIPBOARD_APP: &str = r#"
[[app]]
id = "clip"
name = "Clip"
command = ["sh", "-c", "printf 'from the app' | xclip -selection clipboard; until [ \"$(xclip -o -selection clipboard)\" = 'from the page' ] && [ \"$(xclip -o -selection primary)\" = 'from the page' ]; do sleep 0.05; done; printf 'got %s' \"$(xclip -o -selection clipboard)\" | xclip -selection clipboard; sleep 600"]
profile = "game"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clipboard_goes_both_ways_between_the_player_and_the_app() {
    let _serial = SERIAL.lock().await;
    let net = network_of(CLIPBOARD_APP).await;
    let (session, viewer, mut watch) = play(&net, "clip").await;
    let copied = |text: &'static str| {
        move |w: &Watch, _: Option<&gridplay_streaming::DecodedFrame>| {
            w.probe_messages.contains(&HostProbeMessage::Clipboard { text: text.into() })
        }
    };
    watch.until("the app's copy", copied("from the app")).await;
    let paste = InputKind::Clipboard { text: "from the page".into() };
    viewer.send_input(&InputEvent { seq: 1, kind: paste }.encode().unwrap()).unwrap();
    watch.until("the app's answer", copied("got from the page")).await;
    viewer.close().await;
    net.wait_for_state(&session.session_id, SessionState::Ended).await;
}

/// An app that exits once the pointer stands at (110, 120).
const POINTER_APP: &str = r#"
[[app]]
id = "pointer"
name = "Pointer"
command = ["sh", "-c", "until xdotool getmouselocation | grep -q '^x:110 y:120 '; do sleep 0.05; done"]
profile = "game"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_pointer_moves_the_apps_pointer_by_its_motion() {
    let _serial = SERIAL.lock().await;
    let net = network_of(POINTER_APP).await;
    let (session, viewer, mut watch) = play(&net, "pointer").await;
    watch.picture().await;
    // To the top left corner; then, locked, by (110, 120) from there, whatever the
    // position the page's own cursor (clamped at the far corner) says.
    let moves = [
        InputKind::PointerMove { x: 0, y: 0, dx: 0, dy: 0 },
        InputKind::PointerLock { locked: true },
        InputKind::PointerMove { x: 65535, y: 65535, dx: 60, dy: 20 },
        InputKind::PointerMove { x: 65535, y: 65535, dx: 50, dy: 100 },
    ];
    for (seq, kind) in (1..).zip(moves) {
        viewer.send_input(&InputEvent { seq, kind }.encode().unwrap()).unwrap();
    }
    assert_eq!(end_reason(&mut watch).await, "app exited (status 0)");
    net.wait_for_state(&session.session_id, SessionState::Ended).await;
}

/// Two apps each playing a tone of its own: one through the PulseAudio API (440 Hz),
/// one through ALSA (1000 Hz).
const TONE_APPS: &str = r#"
[[app]]
id = "pulse-tone"
name = "Pulse tone"
command = ["sh", "-c", "python3 -c 'import math, struct, sys\nwave = b\"\".join(struct.pack(\"<hh\", v, v) for v in (int(8000 * math.sin(2 * math.pi * 440 * i / 48000)) for i in range(4800)))\nwhile True: sys.stdout.buffer.write(wave)' | pacat --raw --format=s16le --rate=48000 --channels=2"]
profile = "game"

[[app]]
id = "alsa-tone"
name = "ALSA tone"
command = ["sh", "-c", "python3 -c 'import math, struct, sys\nwave = b\"\".join(struct.pack(\"<hh\", v, v) for v in (int(8000 * math.sin(2 * math.pi * 1000 * i / 48000)) for i in range(4800)))\nwhile True: sys.stdout.buffer.write(wave)' | aplay -q -t raw -f S16_LE -r 48000 -c 2"]
profile = "game"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apps_playing_at_once_are_each_heard_by_their_own_player_only() {
    let _serial = SERIAL.lock().await;
    let net = network_of(TONE_APPS).await;
    let (pulse, pulse_viewer, mut pulse_watch) = play(&net, "pulse-tone").await;
    let (alsa, alsa_viewer, mut alsa_watch) = play(&net, "alsa-tone").await;
    // Once each tone sounds (the stream is silence until the app plays), a second of it.
    let second = 2 * SAMPLE_RATE as usize;
    let mut heard = Vec::new();
    for watch in [&mut pulse_watch, &mut alsa_watch] {
        watch.until("the tone", |w, _| w.heard.iter().any(|s| s.abs() > 1000)).await;
        let start = watch.heard.len();
        watch.until("a second of it", |w, _| w.heard.len() >= start + second).await;
        heard.push(watch.heard[start..start + second].to_vec());
    }
    let (pulse_heard, alsa_heard) = (&heard[0], &heard[1]);
    // Each tone is most of what its player hears, and nothing of the other's is there.
    for (heard, own, other) in [(pulse_heard, 440.0, 1000.0), (alsa_heard, 1000.0, 440.0)] {
        let (own, other) = (tone_power(heard, own), tone_power(heard, other));
        // A pure tone's power is half the signal's mean square.
        let mean_square =
            heard.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / heard.len() as f64;
        assert!(own > 0.4 * mean_square, "the tone is {own:e} of {mean_square:e}");
        assert!(other * 1000.0 < own, "{other:e} of the other tone against {own:e}");
    }
    for (session, viewer) in [(pulse, pulse_viewer), (alsa, alsa_viewer)] {
        viewer.close().await;
        net.wait_for_state(&session.session_id, SessionState::Ended).await;
    }
}

/// An app that exits 0 only if its sound server is there and refuses to load a module
/// (a TCP listener, here) or to exit.
const PULSE_PROBE_APP: &str = r#"
[[app]]
id = "pulse-probe"
name = "Pulse probe"
command = ["sh", "-c", "pactl info > /dev/null || exit 2; pactl load-module module-native-protocol-tcp port=4713 && exit 3; pactl exit && exit 4; exit 0"]
profile = "game"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_cannot_make_its_sound_server_reach_past_the_sandbox() {
    let _serial = SERIAL.lock().await;
    let net = network_of(PULSE_PROBE_APP).await;
    let (session, _viewer, mut watch) = play(&net, "pulse-probe").await;
    assert_eq!(end_reason(&mut watch).await, "app exited (status 0)");
    net.wait_for_state(&session.session_id, SessionState::Ended).await;
}

/// An SDL2 game and a joystick-interface program, each exiting with the face
/// button its one gamepad holds.
const PAD_APP: &str = include_str!("../../tests/apps/gamepad.toml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_players_gamepad_is_a_device_of_their_own_app_and_no_other() {
    let _serial = SERIAL.lock().await;
    let workers = Path::new(env!("CARGO_BIN_EXE_gridplay-worker")).parent().unwrap();
    let library = workers.join(gridplay_host::workloads::app::gamepads::LIBRARY);
    let built = library.is_file();
    assert!(built, "{} is missing: cargo build -p gridplay-gamepad-preload", library.display());
    let net = network_of(PAD_APP).await;
    let (south, south_viewer, mut south_watch) = play(&net, "pad").await;
    let (east, east_viewer, mut east_watch) = play(&net, "pad").await;
    let (west, west_viewer, mut west_watch) = play(&net, "joystick").await;
    for watch in [&mut south_watch, &mut east_watch, &mut west_watch] {
        watch.picture().await;
    }
    // Each player holds their own face button with the rest, south first: a pad
    // leaking into the other session would be a second pad there, or the wrong button.
    let hold = |face: u32| InputKind::Gamepad {
        pad: 0,
        buttons: face | gamepad_button::DPAD_UP,
        left_trigger: 0,
        right_trigger: 255,
        left_x: 32767,
        left_y: 0,
        right_x: 0,
        right_y: 0,
    };
    let players = [
        (&south_viewer, gamepad_button::SOUTH),
        (&east_viewer, gamepad_button::EAST),
        (&west_viewer, gamepad_button::WEST),
    ];
    for (viewer, face) in players {
        for seq in 1..=2 {
            viewer.send_input(&InputEvent { seq, kind: hold(face) }.encode().unwrap()).unwrap();
        }
    }
    assert_eq!(end_reason(&mut south_watch).await, "app exited (status 10)");
    assert_eq!(end_reason(&mut east_watch).await, "app exited (status 11)");
    assert_eq!(end_reason(&mut west_watch).await, "app exited (status 12)");
    for session in [south, east, west] {
        net.wait_for_state(&session.session_id, SessionState::Ended).await;
    }
}
