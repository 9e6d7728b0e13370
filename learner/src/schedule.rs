//! Learning-rate schedule: linear warm-up from 0 to the peak over `warmup_steps`, then cosine
//! decay to `min_lr` at `total_steps` (held there afterwards), as in HF's
//! `get_cosine_schedule_with_warmup` with a floor.

use serde::{Deserialize, Serialize};

/// Warm-up + cosine learning rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupCosine {
    /// Peak learning rate, reached at the end of warm-up.
    pub lr: f64,
    /// Floor reached at `total_steps`.
    #[serde(default)]
    pub min_lr: f64,
    /// Steps of linear warm-up (0 = start at the peak).
    #[serde(default)]
    pub warmup_steps: usize,
    /// Step at which the cosine reaches `min_lr`.
    pub total_steps: usize,
}

impl WarmupCosine {
    /// Learning rate for optimiser step `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.min_lr + (self.lr - self.min_lr) * cosine
    }

    /// Rejects impossible values, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("lr must be > 0, got {}", self.lr));
        }
        if !(self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return Err(format!("min_lr must be in [0, lr], got {}", self.min_lr));
        }
        if self.warmup_steps > self.total_steps {
            return Err(format!(
                "warmup_steps ({}) must not exceed total_steps ({})",
                self.warmup_steps, self.total_steps
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_the_floor() {
        let s = WarmupCosine {
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_steps: 4,
            total_steps: 14,
        };
        assert!((s.lr_at(0) - 2.5e-4).abs() < 1e-12);
        assert!((s.lr_at(3) - 1e-3).abs() < 1e-12);
        assert!(
            (s.lr_at(4) - 1e-3).abs() < 1e-12,
            "cosine starts at the peak"
        );
        // halfway through the decay: the mean of peak and floor
        assert!((s.lr_at(9) - 5.5e-4).abs() < 1e-12);
        assert!((s.lr_at(14) - 1e-4).abs() < 1e-12);
        assert!((s.lr_at(100) - 1e-4).abs() < 1e-12);
        assert!(
            WarmupCosine {
                warmup_steps: 20,
                ..s
            }
            .validate()
            .is_err()
        );
    }
}
