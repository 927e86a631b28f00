//! A small seeded generator (SplitMix64), so a seed reproduces a sampled text on every platform;
//! PyTorch's generator cannot be matched, so parity is checked on distributions, not draws.

#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Draws an index with probability proportional to `probs` (`torch.multinomial`, one sample).
    pub fn sample(&mut self, probs: &[f32]) -> usize {
        let total: f64 = probs.iter().map(|&p| p as f64).sum();
        let mut target = self.next_f64() * total;
        let mut last_nonzero = 0;
        for (i, &p) in probs.iter().enumerate() {
            if p > 0.0 {
                last_nonzero = i;
                target -= p as f64;
                if target < 0.0 {
                    return i;
                }
            }
        }
        last_nonzero
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws_and_zero_probability_never_drawn() {
        let probs = [0.0, 0.5, 0.0, 0.5];
        let a: Vec<usize> = {
            let mut r = Rng::new(7);
            (0..50).map(|_| r.sample(&probs)).collect()
        };
        let mut r = Rng::new(7);
        let b: Vec<usize> = (0..50).map(|_| r.sample(&probs)).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|&i| i == 1 || i == 3));
        assert!(a.contains(&1) && a.contains(&3));
    }
}
