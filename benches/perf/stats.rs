//! Latency histograms (hdrhistogram) and the report every suite adds its figures to.

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::time::Duration;

/// Per-operation latencies, in nanoseconds (1 ns to 60 s, 3 significant digits).
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    pub fn new() -> Latency {
        Latency {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .unwrap_or_else(|e| panic!("histogram bounds: {e}")),
        }
    }

    pub fn record(&mut self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.hist.saturating_record(ns);
    }

    /// Merges another histogram (one per thread).
    pub fn add(&mut self, other: &Latency) {
        self.hist
            .add(&other.hist)
            .unwrap_or_else(|e| panic!("merging histograms: {e}"));
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The value at quantile `q` (0..=1) in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn mean_us(&self) -> f64 {
        self.hist.mean() / 1000.0
    }

    pub fn max_us(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }

    /// `p50 … µs, p99 … µs, p99.9 … µs, max … µs (n ops)`.
    pub fn summary(&self) -> String {
        format!(
            "p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs ({} ops)",
            self.quantile_us(0.5),
            self.quantile_us(0.99),
            self.quantile_us(0.999),
            self.max_us(),
            self.count()
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count(),
            "p50_us": self.quantile_us(0.5),
            "p90_us": self.quantile_us(0.9),
            "p99_us": self.quantile_us(0.99),
            "p999_us": self.quantile_us(0.999),
            "max_us": self.max_us(),
            "mean_us": self.mean_us(),
        })
    }
}

/// A target of issue 6 and whether the measured value meets it.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    AtMost(f64),
    AtLeast(f64),
}

impl Target {
    pub fn met(self, value: f64) -> bool {
        match self {
            Target::AtMost(t) => value <= t,
            Target::AtLeast(t) => value >= t,
        }
    }

    fn text(self, unit: &str) -> String {
        match self {
            Target::AtMost(t) => format!("≤ {t} {unit}"),
            Target::AtLeast(t) => format!("≥ {t} {unit}"),
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    pub suite: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub target: Option<Target>,
    pub detail: String,
}

/// Every figure of one run, printed as a Markdown table and saved as JSON.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    /// Adds a figure (and prints it at once, so a long run shows progress).
    pub fn add(
        &mut self,
        suite: &str,
        name: &str,
        value: f64,
        unit: &str,
        target: Option<Target>,
        detail: impl Into<String>,
    ) {
        let row = Row {
            suite: suite.into(),
            name: name.into(),
            value,
            unit: unit.into(),
            target,
            detail: detail.into(),
        };
        eprintln!("{}", Report::line(&row));
        self.rows.push(row);
    }

    fn line(row: &Row) -> String {
        let target = row
            .target
            .map(|t| {
                format!(
                    "{} ({})",
                    t.text(&row.unit),
                    if t.met(row.value) { "met" } else { "MISSED" }
                )
            })
            .unwrap_or_default();
        format!(
            "| {} | {} | {} {} | {} | {} |",
            row.suite,
            row.name,
            format_value(row.value),
            row.unit,
            target,
            row.detail
        )
    }

    pub fn markdown(&self) -> String {
        let mut out =
            String::from("| suite | figure | value | target | detail |\n|---|---|---|---|---|\n");
        for row in &self.rows {
            out.push_str(&Report::line(row));
            out.push('\n');
        }
        out
    }

    pub fn to_json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    json!({
                        "suite": r.suite, "name": r.name, "value": r.value, "unit": r.unit,
                        "target": r.target.map(|t| t.text(&r.unit)),
                        "met": r.target.map(|t| t.met(r.value)),
                        "detail": r.detail,
                    })
                })
                .collect(),
        )
    }
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
