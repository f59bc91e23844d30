//! Summaries of timing samples.

use std::time::Duration;

use serde::Serialize;

/// Median and 99th percentile of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// 50th percentile, ms.
    pub median_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

impl Summary {
    /// Summarises samples (nearest-rank percentiles); all zero when empty.
    pub fn of(samples: &[Duration]) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Self { median_ms: percentile(&ms, 0.50), p99_ms: percentile(&ms, 0.99) }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(&samples);
        assert_eq!((s.median_ms, s.p99_ms), (50.0, 99.0));
        assert_eq!(Summary::of(&[]).median_ms, 0.0);
    }
}
