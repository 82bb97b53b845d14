//! The time axis: from an instant of the deployment to an x coordinate.
//!
//! Linear, except that a long quiet stretch (an approval gate waiting an hour between phases
//! that take seconds) is cut short: any gap between consecutive instants that would take more
//! than [`MAX_GAP_SHARE`] of the axis and lasts at least [`MIN_CUT`] is drawn [`CUT_SHARE`] wide
//! and marked as a cut, so the phases around it stay readable. The axis says so where it cuts.

use std::time::Duration;

use bluegreen::Timestamp;

use super::model::between;

/// A gap wider than this share of the axis is cut.
pub const MAX_GAP_SHARE: f64 = 0.4;
/// A gap shorter than this is never cut: seconds read fine on a linear axis.
pub const MIN_CUT: Duration = Duration::from_secs(30);
/// The width a cut gap is drawn with, as a share of the axis.
pub const CUT_SHARE: f64 = 0.08;

/// One linear piece of the axis.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Piece {
    /// Seconds from the start where it begins and ends.
    from: f64,
    to: f64,
    /// Whether it is a cut gap.
    cut: bool,
    /// Its weight: seconds for a linear piece; for a cut, chosen so that it gets `CUT_SHARE`.
    width: f64,
}

/// A cut in the axis, for the picture to mark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cut {
    /// Where it begins and ends, in x.
    pub x0: f64,
    /// Where it ends, in x.
    pub x1: f64,
    /// How long the gap really was.
    pub gap: Duration,
}

/// Maps instants between `start` and `end` onto `x0..=x1`.
#[derive(Debug, Clone)]
pub struct TimeScale {
    start: Timestamp,
    x0: f64,
    x1: f64,
    pieces: Vec<Piece>,
    total_width: f64,
}

impl TimeScale {
    /// The axis from `start` to the last of `instants` (they need not be sorted), drawn on
    /// `x0..=x1`. A deployment of zero length gets a one-millisecond axis.
    pub fn new(start: Timestamp, instants: &[Timestamp], x0: f64, x1: f64) -> TimeScale {
        let mut seconds: Vec<f64> = instants.iter().map(|t| between(start, *t).as_secs_f64()).collect();
        seconds.push(0.0);
        seconds.sort_by(f64::total_cmp);
        seconds.dedup();
        let span = seconds.last().copied().unwrap_or(0.0).max(0.001);
        if seconds.len() == 1 {
            seconds.push(span);
        }
        // Gaps long enough to be cut: the rest of the axis keeps (1 - cuts) of the width.
        let long = |gap: f64| gap > span * MAX_GAP_SHARE && gap >= MIN_CUT.as_secs_f64();
        let kept: f64 = seconds.windows(2).map(|w| w[1] - w[0]).filter(|g| !long(*g)).sum();
        let cuts = seconds.windows(2).filter(|w| long(w[1] - w[0])).count();
        let kept_share = (1.0 - CUT_SHARE * cuts as f64).max(0.2);
        let per_cut = if kept > 0.0 { kept / kept_share * CUT_SHARE } else { 1.0 };
        let pieces: Vec<Piece> = seconds
            .windows(2)
            .map(|w| {
                let cut = long(w[1] - w[0]) && kept > 0.0;
                Piece {
                    from: w[0],
                    to: w[1],
                    cut,
                    width: if cut { per_cut } else { w[1] - w[0] },
                }
            })
            .collect();
        let total_width = pieces.iter().map(|p| p.width).sum::<f64>().max(f64::MIN_POSITIVE);
        TimeScale {
            start,
            x0,
            x1,
            pieces,
            total_width,
        }
    }

    /// The x of `at` (clamped to the axis).
    pub fn x(&self, at: Timestamp) -> f64 {
        self.x_of_seconds(between(self.start, at).as_secs_f64())
    }

    /// The x of `seconds` after the start (clamped to the axis).
    pub fn x_of_seconds(&self, seconds: f64) -> f64 {
        let mut before = 0.0;
        for piece in &self.pieces {
            if seconds <= piece.to {
                let within = if piece.to > piece.from {
                    ((seconds - piece.from) / (piece.to - piece.from)).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                return self.at_width(before + within * piece.width);
            }
            before += piece.width;
        }
        self.x1
    }

    /// The cut gaps.
    pub fn cuts(&self) -> Vec<Cut> {
        let mut before = 0.0;
        let mut cuts = Vec::new();
        for piece in &self.pieces {
            if piece.cut {
                cuts.push(Cut {
                    x0: self.at_width(before),
                    x1: self.at_width(before + piece.width),
                    gap: Duration::from_secs_f64(piece.to - piece.from),
                });
            }
            before += piece.width;
        }
        cuts
    }

    /// Tick marks: `(x, seconds after the start)`, about `count` of them on linear stretches, at
    /// a round step (1, 2 or 5 times a power of ten), none inside a cut.
    pub fn ticks(&self, count: usize) -> Vec<(f64, f64)> {
        let linear: f64 = self.pieces.iter().filter(|p| !p.cut).map(|p| p.to - p.from).sum();
        let step = round_step(linear.max(0.001) / count.max(1) as f64);
        let end = self.pieces.last().map_or(0.0, |p| p.to);
        let mut ticks = Vec::new();
        let mut i = 0u32;
        loop {
            let t = f64::from(i) * step;
            if t > end + step * 1e-9 {
                break;
            }
            let in_cut = self.pieces.iter().any(|p| p.cut && t > p.from && t < p.to);
            if !in_cut {
                ticks.push((self.x_of_seconds(t), t));
            }
            i += 1;
        }
        ticks
    }

    fn at_width(&self, w: f64) -> f64 {
        self.x0 + (self.x1 - self.x0) * (w / self.total_width).clamp(0.0, 1.0)
    }
}

/// The round step (1, 2 or 5 × 10^n) nearest above `raw`.
pub fn round_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * power)
}

/// `+1.5s`, `+250ms`, `+2m 10s`: a tick's label.
pub fn tick_label(seconds: f64) -> String {
    if seconds == 0.0 {
        "0".to_string()
    } else if seconds < 1.0 {
        format!("+{}ms", (seconds * 1000.0).round())
    } else if seconds < 60.0 {
        let text = format!("{seconds:.1}");
        format!("+{}s", text.trim_end_matches(".0"))
    } else {
        format!(
            "+{}",
            humantime::format_duration(Duration::from_secs(seconds.round() as u64))
        )
    }
}
