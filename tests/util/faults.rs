//! Helpers of the fault-injection tests (`tests/faults.rs`): a seeded random number
//! generator, the scale of a run (short in CI, long from `scripts/faults`).

use std::time::Duration;

/// SplitMix64: small, seedable, good enough to pick kill times.
pub struct Rng(u64);

impl Rng {
    /// The generator of `IVRE_TEST_FAULTS_SEED`, or of the clock; the seed is printed so a
    /// failing run can be repeated.
    pub fn from_env(what: &str) -> Rng {
        let seed = std::env::var("IVRE_TEST_FAULTS_SEED")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("faults: {what}: seed {seed} (repeat with IVRE_TEST_FAULTS_SEED={seed})");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration uniformly in `[0, max)`.
    pub fn below(&mut self, max: Duration) -> Duration {
        let nanos = max.as_nanos().max(1) as u64;
        Duration::from_nanos(self.next_u64() % nanos)
    }
}

/// `IVRE_TEST_FAULTS_<NAME>` as a number, or `short` (the CI scale).
pub fn scale(name: &str, short: u64) -> u64 {
    std::env::var(format!("IVRE_TEST_FAULTS_{name}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(short)
}

/// One line of figures for `docs/reliability/faults.md`, on stderr (shown with
/// `--nocapture`; `scripts/faults` collects them).
pub fn figures(test: &str, text: &str) {
    eprintln!("faults-figures: {test}: {text}");
}
