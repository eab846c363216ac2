//! Instantaneous metrics for INFO stats (`instantaneous_ops_per_sec`, input/output
//! kbps): sampled by the cron at most every 100 ms, averaged over the last 16 samples,
//! as Redis's trackInstantaneousMetric.

use std::time::Instant;

use crate::state::Stats;

const SAMPLES: usize = 16;

/// One rate: per-second values of the last samples.
#[derive(Debug, Clone)]
struct Rate {
    samples: [f64; SAMPLES],
    next: usize,
    last_reading: u64,
}

impl Rate {
    fn new() -> Rate {
        Rate {
            samples: [0.0; SAMPLES],
            next: 0,
            last_reading: 0,
        }
    }

    fn track(&mut self, reading: u64, elapsed_ms: u128) {
        let delta = reading.saturating_sub(self.last_reading) as f64;
        self.samples[self.next] = delta * 1000.0 / elapsed_ms as f64;
        self.next = (self.next + 1) % SAMPLES;
        self.last_reading = reading;
    }

    fn value(&self) -> f64 {
        self.samples.iter().sum::<f64>() / SAMPLES as f64
    }
}

#[derive(Debug, Clone)]
pub struct Instantaneous {
    last_sample: Instant,
    ops: Rate,
    net_input: Rate,
    net_output: Rate,
}

impl Default for Instantaneous {
    fn default() -> Self {
        Instantaneous {
            last_sample: Instant::now(),
            ops: Rate::new(),
            net_input: Rate::new(),
            net_output: Rate::new(),
        }
    }
}

impl Instantaneous {
    /// Takes a sample if 100 ms passed since the last one (the cron calls this).
    pub fn sample(&mut self, stats: &Stats) {
        let elapsed = self.last_sample.elapsed().as_millis();
        if elapsed < 100 {
            return;
        }
        self.last_sample = Instant::now();
        self.ops.track(stats.commands_processed, elapsed);
        self.net_input.track(stats.net_input_bytes, elapsed);
        self.net_output.track(stats.net_output_bytes, elapsed);
    }

    pub fn ops_per_sec(&self) -> u64 {
        self.ops.value() as u64
    }

    pub fn input_kbps(&self) -> f64 {
        self.net_input.value() / 1024.0
    }

    pub fn output_kbps(&self) -> f64 {
        self.net_output.value() / 1024.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_the_average_of_the_last_samples() {
        let mut r = Rate::new();
        for i in 1..=SAMPLES as u64 {
            r.track(i * 100, 100); // 100 per 100 ms = 1000/s
        }
        assert_eq!(r.value(), 1000.0);
        r.track(SAMPLES as u64 * 100, 100); // idle for one sample
        assert_eq!(r.value(), 1000.0 * (SAMPLES - 1) as f64 / SAMPLES as f64);
    }
}
