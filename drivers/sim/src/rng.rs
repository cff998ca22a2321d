//! A small, fast, seedable random number generator: the simulation needs reproducible bead
//! fields and cheap per-pixel noise, not cryptographic quality.

/// One step of SplitMix64: a good 64-bit mixing function, used both to seed and to hash tile
/// coordinates into independent streams.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Xorshift64* generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded from any 64-bit value (including 0, which xorshift alone cannot take).
    pub(crate) fn new(seed: u64) -> Self {
        let state = splitmix64(seed);
        Self {
            state: if state == 0 {
                0x2545_F491_4F6C_DD1D
            } else {
                state
            },
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform float in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// An approximately standard normal deviate from one 64-bit draw: the sum of four 16-bit
    /// uniforms (Irwin-Hall), rescaled. Its tails stop at about 3.5 sigma, which is plenty for
    /// camera noise and several times cheaper than Box-Muller on every pixel.
    pub(crate) fn gauss_fast(&mut self) -> f32 {
        const MEAN: f32 = 2.0 * 65535.0;
        // Four uniforms on 0..=65535 have variance 4 * (65536^2 - 1) / 12.
        const INV_SIGMA: f32 = 1.0 / 37_837.23;
        let x = self.next_u64();
        let sum = (x & 0xFFFF) + ((x >> 16) & 0xFFFF) + ((x >> 32) & 0xFFFF) + (x >> 48);
        (sum as f32 - MEAN) * INV_SIGMA
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_fast_has_unit_variance_and_zero_mean() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        let (mut sum, mut sum2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let z = f64::from(rng.gauss_fast());
            sum += z;
            sum2 += z * z;
        }
        let mean = sum / n as f64;
        let var = sum2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }

    #[test]
    fn uniform_is_in_unit_interval_and_seeded() {
        let mut a = Rng::new(0);
        let mut b = Rng::new(0);
        for _ in 0..1000 {
            let u = a.uniform();
            assert!((0.0..1.0).contains(&u));
            assert_eq!(u, b.uniform());
        }
    }
}
