//! The Prometheus text exposition format (0.0.4), written by hand: the exporter derives its
//! numbers from journals and must be able to rebuild them (a counter goes back down when a
//! compaction drops history), which a recorder that only counts up cannot do.

use std::collections::BTreeMap;
use std::fmt::Write;

/// A histogram over fixed buckets: what `_bucket`, `_sum` and `_count` lines need.
#[derive(Debug, Clone)]
pub struct Histogram {
    /// Upper bounds, ascending.
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more than `bounds` for `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// Counts one observation.
    pub fn observe(&mut self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
    }

    /// How many observations it holds.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A family: its type, its help, and its sample lines so far.
struct Family {
    kind: &'static str,
    help: &'static str,
    lines: String,
}

/// An exposition being written: families are declared first, then samples of any family in any
/// order; [`finish`](Exposition::finish) writes each family's `# HELP`/`# TYPE` once, with its
/// samples under it, in the order declared.
#[derive(Default)]
pub struct Exposition {
    order: Vec<&'static str>,
    families: BTreeMap<&'static str, Family>,
}

impl Exposition {
    /// Declares the family `name` of type `kind` (`counter`, `gauge`, `histogram`).
    pub fn family(&mut self, name: &'static str, kind: &'static str, help: &'static str) {
        self.order.push(name);
        self.families.insert(
            name,
            Family {
                kind,
                help,
                lines: String::new(),
            },
        );
    }

    /// One sample of the counter or gauge `name`.
    ///
    /// # Panics
    /// If `name` was not declared (a bug in the exporter, not in its input).
    pub fn sample(&mut self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        let family = self.declared(name);
        write_sample(&mut family.lines, name, "", labels, None, value);
    }

    /// The `_bucket`, `_sum` and `_count` samples of the histogram `name`.
    ///
    /// # Panics
    /// If `name` was not declared.
    pub fn histogram(&mut self, name: &'static str, labels: &[(&str, &str)], h: &Histogram) {
        let family = self.declared(name);
        let mut cumulative = 0;
        for (i, count) in h.counts.iter().enumerate() {
            cumulative += count;
            let le = h.bounds.get(i).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            write_sample(&mut family.lines, name, "_bucket", labels, Some(&le), cumulative as f64);
        }
        write_sample(&mut family.lines, name, "_sum", labels, None, h.sum);
        write_sample(&mut family.lines, name, "_count", labels, None, h.count() as f64);
    }

    #[allow(clippy::expect_used, reason = "families are declared by the exporter itself")]
    fn declared(&mut self, name: &'static str) -> &mut Family {
        self.families.get_mut(name).expect("family declared before its samples")
    }

    /// The text: every family with samples, in the order declared.
    pub fn finish(self) -> String {
        let mut out = String::new();
        for name in self.order {
            let Some(family) = self.families.get(name) else {
                continue;
            };
            if family.lines.is_empty() {
                continue;
            }
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {}", family.kind);
            out.push_str(&family.lines);
        }
        out
    }
}

fn write_sample(out: &mut String, name: &str, suffix: &str, labels: &[(&str, &str)], le: Option<&str>, value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
    for (i, (key, value)) in all.enumerate() {
        out.push(if i == 0 { '{' } else { ',' });
        let _ = write!(out, "{key}=\"{}\"", escape(value));
    }
    if !labels.is_empty() || le.is_some() {
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value escaped as the format requires: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_written_once_with_their_samples_and_histograms_cumulate() {
        let mut x = Exposition::default();
        x.family("c_total", "counter", "A counter.");
        x.family("h_seconds", "histogram", "A histogram.");
        x.family("unused", "gauge", "No samples.");
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.5, 0.7, 5.0] {
            h.observe(v);
        }
        x.histogram("h_seconds", &[("app", "a")], &h);
        x.sample("c_total", &[("app", "a\"b\\c\nd")], 2.0);
        x.sample("c_total", &[], 1.0);
        assert_eq!(
            x.finish(),
            "# HELP c_total A counter.\n# TYPE c_total counter\n\
             c_total{app=\"a\\\"b\\\\c\\nd\"} 2\nc_total 1\n\
             # HELP h_seconds A histogram.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{app=\"a\",le=\"0.1\"} 1\nh_seconds_bucket{app=\"a\",le=\"1\"} 3\n\
             h_seconds_bucket{app=\"a\",le=\"+Inf\"} 4\nh_seconds_sum{app=\"a\"} 6.25\nh_seconds_count{app=\"a\"} 4\n"
        );
    }
}
