//! Random draws on top of ChaCha8.
//!
//! Only `next_u64` of the generator is used and every distribution is
//! written out here, so the output depends on the ChaCha8 stream alone and
//! not on how a `rand` release happens to implement ranges or floats.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Independent streams: each file or part draws from its own, so changing
/// how one part consumes randomness leaves the others byte-identical.
pub(crate) mod stream {
    pub const CATALOGUE: u64 = 1;
    pub const CUSTOMER_PLAN: u64 = 2;
    pub const CUSTOMER_ROWS: u64 = 3;
    pub const ANONYMOUS: u64 = 4;
    pub const DAILY: u64 = 5;
    pub const INVENTORY: u64 = 6;
    /// Customer chunk `i` of the order simulation uses `SIMULATION + i`.
    pub const SIMULATION: u64 = 1 << 32;
}

pub(crate) struct Rng(ChaCha8Rng);

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(stream);
        Rng(inner)
    }

    #[inline]
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n). The multiply-shift bias is below 2^-32 for the
    /// sizes used here, invisible in a demo.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in [lo, hi] (inclusive).
    #[inline]
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    #[inline]
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    #[inline]
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// Index drawn in proportion to `weights` (a short table: linear scan).
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// Standard normal (Box–Muller, one value of the pair).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Poisson count; exact for small means, normal approximation above.
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean < 30.0 {
            let limit = (-mean).exp();
            let mut k = 0;
            let mut p = self.f64();
            while p > limit {
                k += 1;
                p *= self.f64();
            }
            k
        } else {
            (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64
        }
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            xs.swap(i, j);
        }
    }
}

/// Walker/Vose alias table: O(1) draws from a fixed discrete distribution,
/// which is what makes ten million Zipf-distributed order lines cheap.
pub(crate) struct Alias {
    cut: Vec<u32>,
    alias: Vec<u32>,
}

impl Alias {
    /// `None` when there is nothing with positive weight to draw.
    pub fn new(weights: &[f64]) -> Option<Alias> {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        if n == 0 || total <= 0.0 || n >= u32::MAX as usize {
            return None;
        }
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut cut = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            cut[s] = (scaled[s] * 4_294_967_296.0).min(u32::MAX as f64) as u32;
            alias[s] = l as u32;
            scaled[l] += scaled[s] - 1.0;
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        Some(Alias { cut, alias })
    }

    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let r = rng.u64();
        let i = (((r >> 32) * self.cut.len() as u64) >> 32) as usize;
        if (r as u32) < self.cut[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_follows_weights() {
        let table = Alias::new(&[1.0, 0.0, 3.0, 6.0]).unwrap();
        let mut rng = Rng::new(1, 0);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((9_000..11_000).contains(&counts[0]), "{counts:?}");
        assert!((28_000..32_000).contains(&counts[2]), "{counts:?}");
        assert!((58_000..62_000).contains(&counts[3]), "{counts:?}");
        assert!(Alias::new(&[0.0, 0.0]).is_none());
    }

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(9, 1).u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::new(9, 1).u64(), Rng::new(9, 2).u64());
    }
}
