//! `gridplay relay`: the UDP impairment relay as a command.

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;
use gridplay_streaming::rate::LinkConfig;
use gridplay_streaming::relay::{RelayConfig, run_relay};

/// `gridplay relay` flags.
#[derive(Args)]
pub struct RelayArgs {
    /// Address clients send to.
    #[arg(long)]
    client_side: IpAddr,
    /// The host's media address.
    #[arg(long)]
    upstream: IpAddr,
    /// Ports relayed 1:1, e.g. 40000-40015 (the host's --media-ports).
    #[arg(long, value_parser = crate::parse_port_range)]
    ports: std::ops::RangeInclusive<u16>,
    /// One-way delay added in each direction, ms.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Uniform jitter around the delay, ms.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Random loss in each direction, 0..=1.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Cap host → client at this many kbit/s (a drop-tail queue of --queue-kb); 0 for none.
    /// `tc tbf` on a real interface is the more faithful cap where it can be used.
    #[arg(long, default_value_t = 0)]
    rate_kbit: u64,
    /// Bottleneck queue for --rate-kbit, KiB.
    #[arg(long, default_value_t = 64)]
    queue_kb: usize,
    /// Seed of the random draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Runs the relay until it fails or the process is stopped.
pub async fn run(args: RelayArgs) -> anyhow::Result<()> {
    anyhow::ensure!((0.0..=1.0).contains(&args.loss), "--loss must be within 0..=1");
    let link = LinkConfig {
        delay: Duration::from_millis(args.delay_ms),
        jitter: Duration::from_millis(args.jitter_ms),
        loss: args.loss,
        ..LinkConfig::default()
    };
    println!(
        "relaying {}:{:?} -> {} ({} ms ± {} ms, {:.1}% loss each way, {} kbit/s to clients)",
        args.client_side,
        args.ports,
        args.upstream,
        args.delay_ms,
        args.jitter_ms,
        args.loss * 100.0,
        if args.rate_kbit > 0 { args.rate_kbit.to_string() } else { "no cap".into() }
    );
    let to_client = LinkConfig {
        capacity_bps: (args.rate_kbit > 0).then_some(args.rate_kbit * 1000),
        queue_bytes: args.queue_kb * 1024,
        ..link
    };
    let config = RelayConfig {
        client_side: args.client_side,
        upstream: args.upstream,
        ports: args.ports,
        to_upstream: link,
        to_client,
        seed: args.seed,
    };
    run_relay(config).await?;
    Ok(())
}
