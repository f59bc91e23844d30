//! [`DegradationPolicy`]: when the bitrate stays too low for the picture, suggest a smaller one.

use std::time::{Duration, Instant};

/// How long the target must stay below the current level's minimum before stepping down.
pub const STEP_DOWN_AFTER: Duration = Duration::from_secs(2);
/// How long the target must stay above the better level's threshold before stepping up.
pub const STEP_UP_AFTER: Duration = Duration::from_secs(8);
/// Stepping up needs this multiple of the better level's `min_bps`: after a step up the target
/// must fall by a quarter before the same level is left again.
pub const STEP_UP_HEADROOM: f64 = 1.3;

/// One rung of a quality ladder: a resolution and frame rate, and the least bitrate worth
/// encoding them at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QualityLevel {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Below this many bits per second, a lower level looks better.
    pub min_bps: u64,
}

/// A ladder for a 1280x720 at 60 fps stream, best first.
///
/// The minimums sit at the low end of common H.264 guidance (720p60 from about 2.25 Mbit/s,
/// 720p30 from 1.5, 480p from 0.5, 360p from 0.4) lowered somewhat, because a game stream at
/// low motion compresses better than camera video and a lower rung costs the player detail.
/// For the portrait phone profile swap width and height.
pub const LADDER_720P60: [QualityLevel; 4] = [
    QualityLevel { width: 1280, height: 720, fps: 60, min_bps: 2_000_000 },
    QualityLevel { width: 1280, height: 720, fps: 30, min_bps: 1_200_000 },
    QualityLevel { width: 854, height: 480, fps: 30, min_bps: 600_000 },
    QualityLevel { width: 640, height: 360, fps: 30, min_bps: 300_000 },
];

/// A suggested change of quality level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualityChange {
    /// Index of the level left, in the ladder (0 is best).
    pub from: usize,
    /// Index of the level suggested.
    pub to: usize,
    /// The level suggested.
    pub quality: QualityLevel,
}

impl QualityChange {
    /// Whether this change lowers quality.
    pub fn is_degradation(&self) -> bool {
        self.to > self.from
    }
}

/// Turns a target bitrate over time into quality-level suggestions, with hysteresis.
///
/// Below some bitrate a resolution and frame rate stop looking like video: H.264 at 720p60 on
/// 600 kbit/s is a smear of blocks, where 480p30 on the same bits is merely soft. A ladder of
/// [`QualityLevel`]s, best first, each with the least bitrate it is worth encoding at, turns the
/// controller's target into a suggestion, with hysteresis so that it does not flap:
///
/// - **Down** when the target has stayed below the current level's `min_bps` for
///   [`STEP_DOWN_AFTER`]; straight to the best level the target can carry, since a player on a
///   collapsed link should not sit through one step per hold time.
/// - **Up** one level at a time, when the target has stayed at or above [`STEP_UP_HEADROOM`] ×
///   that level's `min_bps` for [`STEP_UP_AFTER`]. The headroom and the longer hold are the
///   hysteresis: a target hovering around a threshold steps down once and stays down.
#[derive(Debug, Clone)]
pub struct DegradationPolicy {
    levels: Vec<QualityLevel>,
    level: usize,
    below_since: Option<Instant>,
    above_since: Option<Instant>,
}

impl DegradationPolicy {
    /// A policy over `levels`, starting at the best. Levels are ordered by `min_bps`, highest
    /// first; an empty ladder never suggests anything.
    pub fn new(levels: impl Into<Vec<QualityLevel>>) -> Self {
        let mut levels = levels.into();
        levels.sort_by_key(|level| std::cmp::Reverse(level.min_bps));
        Self { levels, level: 0, below_since: None, above_since: None }
    }

    /// The suggested level, or `None` for an empty ladder.
    pub fn current(&self) -> Option<&QualityLevel> {
        self.levels.get(self.level)
    }

    /// Index of the suggested level in [`levels`](Self::levels) (0 is best).
    pub fn level(&self) -> usize {
        self.level
    }

    /// The ladder, best first.
    pub fn levels(&self) -> &[QualityLevel] {
        &self.levels
    }

    /// Takes the target bitrate at `now`; returns a change when the suggestion moves.
    ///
    /// Call it whenever the target is recomputed (each feedback report); the hold times are
    /// measured between these calls, so a caller that stops calling stops the clock.
    #[must_use = "a quality change that is not applied is lost"]
    pub fn update(&mut self, now: Instant, target_bps: u64) -> Option<QualityChange> {
        let current = *self.levels.get(self.level)?;

        let worse_exists = self.level + 1 < self.levels.len();
        if worse_exists && target_bps < current.min_bps {
            self.above_since = None;
            let since = *self.below_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= STEP_DOWN_AFTER {
                // The best level the target carries, or the last one.
                let to = (self.level + 1..self.levels.len())
                    .find(|&index| self.levels[index].min_bps <= target_bps)
                    .unwrap_or(self.levels.len() - 1);
                return Some(self.change_to(to));
            }
            return None;
        }
        self.below_since = None;

        let better = self.level.checked_sub(1).map(|index| (index, self.levels[index]));
        match better {
            Some((index, level))
                if target_bps as f64 >= STEP_UP_HEADROOM * level.min_bps as f64 =>
            {
                let since = *self.above_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= STEP_UP_AFTER {
                    return Some(self.change_to(index));
                }
            }
            _ => self.above_since = None,
        }
        None
    }

    fn change_to(&mut self, to: usize) -> QualityChange {
        let change = QualityChange { from: self.level, to, quality: self.levels[to] };
        self.level = to;
        self.below_since = None;
        self.above_since = None;
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    /// Feeds `target(t)` every 100 ms for `seconds`, returning the changes with their times.
    fn drive(
        policy: &mut DegradationPolicy,
        t0: Instant,
        seconds: u32,
        target: impl Fn(Duration) -> u64,
    ) -> Vec<(Duration, QualityChange)> {
        (0..seconds * 10)
            .filter_map(|tick| {
                let at = 100 * MS * tick;
                policy.update(t0 + at, target(at)).map(|change| (at, change))
            })
            .collect()
    }

    #[test]
    fn a_brief_dip_does_not_degrade() {
        let mut policy = DegradationPolicy::new(LADDER_720P60);
        let changes = drive(&mut policy, crate::rate::test_epoch(), 20, |at| {
            if at > 5 * S && at < 6 * S { 1_000_000 } else { 3_000_000 }
        });
        assert_eq!(changes, vec![]);
        assert_eq!(policy.level(), 0);
    }

    #[test]
    fn a_sustained_low_rate_steps_down_to_what_it_carries() {
        let mut policy = DegradationPolicy::new(LADDER_720P60);
        let changes = drive(&mut policy, crate::rate::test_epoch(), 10, |_| 700_000);
        assert_eq!(changes.len(), 1, "{changes:?}");
        let (at, change) = changes[0];
        assert_eq!(at, STEP_DOWN_AFTER);
        assert_eq!((change.from, change.to), (0, 2), "700 kbit/s carries 480p30");
        assert!(change.is_degradation());
        assert_eq!(policy.current(), Some(&LADDER_720P60[2]));
    }

    #[test]
    fn hovering_around_a_threshold_does_not_flap() {
        let mut policy = DegradationPolicy::new(LADDER_720P60);
        // Swings ±15 % around the 720p60 minimum with a 6 s period, for two minutes.
        let changes = drive(&mut policy, crate::rate::test_epoch(), 120, |at| {
            let phase = (at.as_secs_f64() * std::f64::consts::TAU / 6.0).sin();
            (2_000_000.0 * (1.0 + 0.15 * phase)) as u64
        });
        assert_eq!(changes.len(), 1, "one step down, then it stays: {changes:?}");
        assert!(changes[0].1.is_degradation());
    }

    #[test]
    fn recovery_steps_up_one_level_at_a_time_after_the_hold() {
        let mut policy = DegradationPolicy::new(LADDER_720P60);
        let changes = drive(&mut policy, crate::rate::test_epoch(), 40, |at| {
            if at < 5 * S { 400_000 } else { 5_000_000 }
        });
        let steps: Vec<_> = changes.iter().map(|(at, c)| (at.as_secs(), c.from, c.to)).collect();
        assert_eq!(steps, vec![(2, 0, 3), (13, 3, 2), (21, 2, 1), (29, 1, 0)]);
    }

    #[test]
    fn an_empty_ladder_suggests_nothing() {
        let mut policy = DegradationPolicy::new(Vec::new());
        assert_eq!(policy.current(), None);
        assert_eq!(policy.update(crate::rate::test_epoch(), 0), None);
    }
}
