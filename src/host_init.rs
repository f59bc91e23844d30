//! `gridplay host init`: sizes this machine for hosting — its best Vulkan device, the
//! encoder it gets, what a 1280x720@60 frame of Orbit costs here and so how many game
//! sessions it holds — asks (on a terminal) for what its flags did not say: the broker,
//! where the machine is, its price, how players reach it and where it is paid — and writes
//! a commented configuration for `gridplay host --config`.
//! `gridplay host service` prints (or installs) the systemd unit that runs it.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use gridplay_host::gpu::{list_gpus, pick_best};
use gridplay_host::pipeline::{StreamSpec, frame_cost};

/// The share of the machine's cores sessions may take; the rest is left to the host's
/// own work, the network and the system.
const SESSION_SHARE: f64 = 0.75;

/// The stream a game slot is sized for.
const GAME_STREAM: StreamSpec = StreamSpec { width: 1280, height: 720, fps: 60 };

/// Frames the sizing measures.
const MEASURED_FRAMES: usize = 60;

/// Where the unit goes with `--install`.
const UNIT_PATH: &str = "/etc/systemd/system/gridplay-host.service";

/// `gridplay host init` flags: what goes into the file besides what is measured.
#[derive(Args)]
pub struct InitArgs {
    /// The configuration file to write.
    #[arg(long, default_value = "gridplay-host.toml")]
    out: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
    /// The broker this host registers with (asked on a terminal; default http://127.0.0.1:8080).
    #[arg(long)]
    broker_url: Option<String>,
    /// The address players reach this host at (its public IP), for WHEP and media; without
    /// it, players reach the host through its link to the broker (behind a home router).
    #[arg(long)]
    public_ip: Option<std::net::IpAddr>,
    /// Region label shown to players (asked on a terminal; default `local`).
    #[arg(long)]
    region: Option<String>,
    /// Where the host is: latitude (asked on a terminal; default 0).
    #[arg(long, allow_negative_numbers = true)]
    lat: Option<f64>,
    /// Where the host is: longitude (asked on a terminal; default 0).
    #[arg(long, allow_negative_numbers = true)]
    lon: Option<f64>,
    /// Price per 15-minute block, wei when settling on chain (asked on a terminal; default 0).
    #[arg(long)]
    price_per_block: Option<u64>,
    /// Where the host is paid (`0x` address) when its broker settles on chain.
    #[arg(long)]
    payout_address: Option<String>,
    /// Ask nothing, even on a terminal: what the flags leave out takes its default.
    #[arg(long)]
    no_input: bool,
}

/// What goes into the file besides what is measured: the flags, then the answers.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    broker_url: String,
    public_ip: Option<std::net::IpAddr>,
    region: String,
    lat: f64,
    lon: f64,
    price_per_block: u64,
    payout_address: Option<String>,
}

/// Where questions go and answers come from; `None` asks nothing.
type Prompt<'a> = Option<(&'a mut dyn BufRead, &'a mut dyn Write)>;

impl Settings {
    /// The flags' values, asking `prompt` for each one left out (its default on an empty answer).
    fn from(args: &InitArgs, mut prompt: Prompt<'_>) -> anyhow::Result<Self> {
        let url = |s: &str| match s.starts_with("http://") || s.starts_with("https://") {
            true => Ok(s.trim_end_matches('/').to_owned()),
            false => Err("an http:// or https:// URL".to_owned()),
        };
        let degrees = |limit: f64| {
            move |s: &str| match s.parse::<f64>() {
                Ok(v) if v.abs() <= limit => Ok(v),
                _ => Err(format!("a number from -{limit} to {limit}")),
            }
        };
        let optional = |parse: fn(&str) -> Result<String, String>| {
            move |s: &str| if s.is_empty() { Ok(None) } else { parse(s).map(Some) }
        };
        let broker_url = match &args.broker_url {
            Some(given) => url(given).map_err(anyhow::Error::msg)?,
            None => ask(&mut prompt, "Broker URL", "http://127.0.0.1:8080", url)?,
        };
        let region = match &args.region {
            Some(given) => given.clone(),
            None => {
                ask(&mut prompt, "Region label shown to players", "local", |s| Ok(s.to_owned()))?
            }
        };
        let lat = match args.lat {
            Some(given) => given,
            None => ask(&mut prompt, "Latitude of this machine", "0", degrees(90.0))?,
        };
        let lon = match args.lon {
            Some(given) => given,
            None => ask(&mut prompt, "Longitude of this machine", "0", degrees(180.0))?,
        };
        let price_per_block = match args.price_per_block {
            Some(given) => given,
            None => ask(
                &mut prompt,
                "Price per 15-minute block (wei when settling on chain)",
                "0",
                |s| s.parse::<u64>().map_err(|_| "a whole number".to_owned()),
            )?,
        };
        let public_ip = match args.public_ip {
            Some(given) => Some(given),
            None => ask(
                &mut prompt,
                "Public IP players reach this machine at (empty: behind a router, reached through the broker)",
                "",
                |s| {
                    if s.is_empty() {
                        Ok(None)
                    } else {
                        s.parse().map(Some).map_err(|_| "an IP address".to_owned())
                    }
                },
            )?,
        };
        let payout_address = match &args.payout_address {
            Some(given) => Some(crate::parse_address(given).map_err(anyhow::Error::msg)?),
            None => ask(
                &mut prompt,
                "Payout address, 0x… (empty: none)",
                "",
                optional(crate::parse_address),
            )?,
        };
        Ok(Self { broker_url, public_ip, region, lat, lon, price_per_block, payout_address })
    }
}

/// Asks `question` until `parse` takes the answer (an empty one is `default`); without a
/// prompt, `default` parsed.
fn ask<T>(
    prompt: &mut Prompt<'_>,
    question: &str,
    default: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    let Some((input, output)) = prompt else {
        return parse(default).map_err(anyhow::Error::msg);
    };
    loop {
        write!(output, "{question} [{default}]: ")?;
        output.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            anyhow::bail!("no answer to \"{question}\" (end of input)");
        }
        let answer = match line.trim() {
            "" => default,
            answer => answer,
        };
        match parse(answer) {
            Ok(value) => return Ok(value),
            Err(wanted) => writeln!(output, "  {answer:?} is not {wanted}; try again")?,
        }
    }
}

/// `gridplay host service` flags.
#[derive(Args)]
pub struct ServiceArgs {
    /// The host's configuration file (as `gridplay host init` wrote it).
    #[arg(long, default_value = "gridplay-host.toml")]
    config: PathBuf,
    /// Write the unit to /etc/systemd/system/gridplay-host.service instead of printing it.
    #[arg(long)]
    install: bool,
}

/// What this machine was measured to hold.
#[derive(Debug, Clone, PartialEq)]
struct Sizing {
    /// The Vulkan device sessions render on.
    gpu: String,
    /// The encoder they get.
    encoder: String,
    /// What one 1280x720@60 frame costs.
    frame: Duration,
    /// Cores the machine has.
    cores: usize,
}

impl Sizing {
    /// Game sessions at 1280x720@60 the machine holds in real time.
    fn game_slots(&self) -> u32 {
        let budget = self.cores as f64 * SESSION_SHARE * GAME_STREAM.frame_duration().as_secs_f64();
        (budget / self.frame.as_secs_f64().max(1e-6)).floor() as u32
    }
}

/// Runs `gridplay host init`.
pub fn init(args: &InitArgs) -> anyhow::Result<()> {
    if args.out.exists() && !args.force {
        anyhow::bail!("{} exists; pass --force to replace it", args.out.display());
    }
    let (stdin, mut stdout) = (std::io::stdin(), std::io::stdout());
    let mut input = stdin.lock();
    let interactive = !args.no_input && stdin.is_terminal();
    let prompt: Prompt<'_> = if interactive { Some((&mut input, &mut stdout)) } else { None };
    let settings = Settings::from(args, prompt)?;
    let gpus = list_gpus().context("listing Vulkan devices")?;
    let gpu =
        pick_best(&gpus).context("no Vulkan device: install a driver (or Mesa's lavapipe)")?;
    println!("device: {} ({})", gpu.name, gpu.device_type);
    let (frame, encoder) = frame_cost(GAME_STREAM, MEASURED_FRAMES).context("measuring a frame")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sizing = Sizing { gpu: gpu.name.clone(), encoder: encoder.to_string(), frame, cores };
    let slots = sizing.game_slots();
    println!(
        "encoder: {encoder}; a 1280x720@60 frame costs {:.1} ms here; game slots on {cores} cores: {slots}",
        frame.as_secs_f64() * 1e3,
    );
    if slots == 0 {
        println!("this machine cannot hold one 1280x720@60 session in real time: it offers none");
    }
    std::fs::write(&args.out, config_text(&settings, &sizing))
        .with_context(|| format!("writing {}", args.out.display()))?;
    let path = absolute(&args.out)?;
    println!("wrote {}", path.display());
    println!("run it:            gridplay host --config {}", path.display());
    println!("or as a service:   gridplay host service --config {} --install", path.display());
    Ok(())
}

/// The commented configuration `init` writes: every key a `gridplay host` flag.
fn config_text(args: &Settings, sizing: &Sizing) -> String {
    let mut text = String::new();
    let q = |s: &str| format!("{s:?}");
    let _ =
        writeln!(text, "# Gridplay host: run with `gridplay host --config FILE`. Every key is a");
    let _ =
        writeln!(text, "# `gridplay host` flag (`gridplay host --help`); the command line wins.\n");
    let _ = writeln!(text, "# The broker this host registers with (https:// is verified).");
    let _ = writeln!(text, "broker-url = {}", q(&args.broker_url));
    let _ = writeln!(
        text,
        "# This host's identity key (created on first start); its public half is the host id."
    );
    let _ = writeln!(text, "key-file = \"gridplay-host.key\"\n");
    match args.public_ip {
        Some(ip) => {
            let _ = writeln!(text, "# Players reach WHEP and media here.");
            let _ = writeln!(text, "listen = \"0.0.0.0:8081\"");
            let _ = writeln!(text, "public-url = {}", q(&format!("http://{ip}:8081")));
            let _ = writeln!(text, "media-ip = {}\n", q(&ip.to_string()));
        }
        None => {
            let _ = writeln!(
                text,
                "# No inbound port: players' WHEP requests reach this host through its link to"
            );
            let _ = writeln!(
                text,
                "# the broker. To serve them directly, set listen and public-url (or give"
            );
            let _ = writeln!(text, "# `gridplay host init --public-ip`).\n");
        }
    }
    let _ = writeln!(
        text,
        "# Measured by `gridplay host init`: {} with {}, {:.1} ms per 1280x720@60 frame,",
        sizing.gpu,
        sizing.encoder,
        sizing.frame.as_secs_f64() * 1e3
    );
    let _ = writeln!(
        text,
        "# {} cores, {:.0}% of them for sessions. A portrait phone session costs about as much:",
        sizing.cores,
        SESSION_SHARE * 100.0
    );
    let _ = writeln!(text, "# move slots to phone-slots to offer phones instead.");
    let _ = writeln!(text, "game-slots = {}", sizing.game_slots());
    let _ = writeln!(text, "phone-slots = 0\n");
    let _ =
        writeln!(text, "# Where the host is, for placement, and its price per 15-minute block.");
    let _ = writeln!(text, "region = {}", q(&args.region));
    let _ = writeln!(text, "lat = {:?}", args.lat);
    let _ = writeln!(text, "lon = {:?}", args.lon);
    let _ = writeln!(text, "price-per-block = {}", args.price_per_block);
    let _ = writeln!(
        text,
        "\n# The owner's dashboard: sessions, capacity check, earnings and Claim. On loopback it"
    );
    let _ = writeln!(
        text,
        "# answers this machine alone; on another address it asks for a token printed at start."
    );
    let _ = writeln!(text, "dashboard = \"127.0.0.1:7070\"\n");
    match &args.payout_address {
        Some(address) => {
            let _ = writeln!(text, "payout-address = {}", q(address));
        }
        None => {
            let _ = writeln!(
                text,
                "# payout-address = \"0x…\"   (to be paid when the broker settles on chain)"
            );
        }
    }
    text
}

/// Runs `gridplay host service`.
pub fn service(args: &ServiceArgs) -> anyhow::Result<()> {
    let config = absolute(&args.config)?;
    if !config.is_file() {
        anyhow::bail!("{} is not a file: write one with `gridplay host init`", config.display());
    }
    let program = std::env::current_exe().context("finding the gridplay binary")?;
    let unit = unit_text(&program, &config);
    if !args.install {
        print!("{unit}");
        return Ok(());
    }
    std::fs::write(UNIT_PATH, unit).with_context(|| format!("writing {UNIT_PATH} (as root?)"))?;
    println!(
        "wrote {UNIT_PATH}; start it with: systemctl daemon-reload && systemctl enable --now gridplay-host"
    );
    Ok(())
}

/// A systemd unit that runs `program host --config config` from the config's directory.
fn unit_text(program: &Path, config: &Path) -> String {
    let dir = config.parent().unwrap_or(Path::new("/"));
    format!(
        "[Unit]\n\
         Description=Gridplay host\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         ExecStart={} host --config {}\n\
         WorkingDirectory={}\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         # Sessions' sandboxes, displays and sound servers go with the host.\n\
         KillMode=control-group\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        program.display(),
        config.display(),
        dir.display()
    )
}

/// `path` made absolute against the working directory.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizing(frame_ms: u64, cores: usize) -> Sizing {
        Sizing {
            gpu: "llvmpipe".into(),
            encoder: "openh264".into(),
            frame: Duration::from_millis(frame_ms),
            cores,
        }
    }

    #[test]
    fn slots_are_the_sessions_the_cores_hold_in_real_time() {
        // 2 cores × 75% × 16.7 ms = 25 ms of frame time per 60th of a second.
        assert_eq!(sizing(8, 2).game_slots(), 3);
        assert_eq!(sizing(12, 2).game_slots(), 2);
        assert_eq!(sizing(30, 2).game_slots(), 0);
        assert_eq!(sizing(2, 16).game_slots(), 100);
    }

    #[test]
    fn the_written_file_is_a_host_configuration_that_parses() {
        let args = Settings {
            broker_url: "https://broker.example".into(),
            public_ip: Some("203.0.113.7".parse().unwrap()),
            region: "eu-west".into(),
            lat: 48.85,
            lon: -2.35,
            price_per_block: 100,
            payout_address: None,
        };
        let file = std::env::temp_dir().join(format!("gridplay-init-{}.toml", std::process::id()));
        std::fs::write(&file, config_text(&args, &sizing(8, 2))).unwrap();
        let cli = crate::parse_cli(
            ["gridplay", "host", "--config", file.to_str().unwrap()].map(Into::into).to_vec(),
        );
        std::fs::remove_file(&file).unwrap();
        let crate::Command::Host(host) = cli.unwrap().command else { panic!("not the host") };
        assert_eq!(host.broker_url, "https://broker.example");
        assert_eq!((host.game_slots, host.phone_slots, host.price_per_block), (3, 0, 100));
        assert_eq!((host.lat, host.lon, host.region.as_str()), (48.85, -2.35, "eu-west"));
        assert_eq!(host.media_ip.to_string(), "203.0.113.7");
        assert_eq!(host.public_url.as_deref(), Some("http://203.0.113.7:8081"));
    }

    fn init_args(flags: &[&str]) -> InitArgs {
        let cli = crate::parse_cli(
            ["gridplay", "host", "init"].iter().chain(flags).map(|s| (*s).into()).collect(),
        );
        match cli.unwrap().command {
            crate::Command::Host(host) => match host.action {
                Some(crate::HostAction::Init(init)) => init,
                _ => panic!("not init"),
            },
            _ => panic!("not the host"),
        }
    }

    #[test]
    fn what_the_flags_leave_out_is_asked_until_answered_well() {
        let args = init_args(&["--region", "eu-west", "--price-per-block", "7"]);
        let answers = "https://broker.example/\nnorth\n95\n48.85\n\n203.0.113.7\n0x12\n\n";
        let (mut input, mut output) = (std::io::Cursor::new(answers), Vec::new());
        let settings = Settings::from(&args, Some((&mut input, &mut output))).unwrap();
        let expected = Settings {
            broker_url: "https://broker.example".into(),
            public_ip: Some("203.0.113.7".parse().unwrap()),
            region: "eu-west".into(),
            lat: 48.85,
            lon: 0.0,
            price_per_block: 7,
            payout_address: None,
        };
        assert_eq!(settings, expected);
        let asked = String::from_utf8(output).unwrap();
        assert!(!asked.contains("Region") && !asked.contains("Price"), "given as flags: {asked}");
        assert!(asked.contains("\"north\" is not a number from -90 to 90"), "{asked}");
        assert!(asked.contains("\"95\" is not a number from -90 to 90"), "{asked}");
        assert!(asked.contains("\"0x12\" is not"), "{asked}");
        // Without a terminal nothing is asked: the defaults.
        let quiet = Settings::from(&init_args(&[]), None).unwrap();
        assert_eq!(
            (quiet.broker_url.as_str(), quiet.region.as_str()),
            ("http://127.0.0.1:8080", "local")
        );
        assert_eq!((quiet.public_ip, quiet.payout_address), (None, None));
        // Input that ends before an answer is an error, not a default.
        let mut short = std::io::Cursor::new("https://b.example\n");
        let mut sink = Vec::new();
        assert!(Settings::from(&init_args(&[]), Some((&mut short, &mut sink))).is_err());
    }

    #[test]
    fn the_unit_runs_the_host_with_its_configuration() {
        let unit = unit_text(Path::new("/usr/bin/gridplay"), Path::new("/srv/gp/host.toml"));
        assert!(unit.contains("ExecStart=/usr/bin/gridplay host --config /srv/gp/host.toml\n"));
        assert!(unit.contains("WorkingDirectory=/srv/gp\n"));
        assert!(unit.contains("WantedBy=multi-user.target"));
    }
}
