//! The bead sample: fluorescent beads at fixed positions in stage coordinates, generated lazily
//! from the world's seed on a grid of square tiles, so the field is the same every time the
//! stage returns to a place and its density is uniform over any travel, however large.

use crate::rng::{splitmix64, Rng};

/// A fluorescent dye: where it absorbs and where it emits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Dye {
    /// Excitation peak, nm.
    pub(crate) excitation_nm: f64,
    /// Emission peak, nm.
    pub(crate) emission_nm: f64,
}

/// The three dyes beads carry: blue, green and red, matched to 405, 488 and 561 nm lasers.
pub(crate) const DYES: [Dye; 3] = [
    Dye {
        excitation_nm: 405.0,
        emission_nm: 460.0,
    },
    Dye {
        excitation_nm: 488.0,
        emission_nm: 510.0,
    },
    Dye {
        excitation_nm: 561.0,
        emission_nm: 610.0,
    },
];

/// Half-width (1/e) of a dye's excitation band, nm.
pub(crate) const EXCITATION_WIDTH_NM: f64 = 25.0;

/// One bead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bead {
    /// Stage x, um.
    pub(crate) x: f64,
    /// Stage y, um.
    pub(crate) y: f64,
    /// Index into [`DYES`].
    pub(crate) dye: usize,
    /// Relative brightness, 0.7..1.3: real bead batches are not uniform.
    pub(crate) brightness: f64,
}

/// The bead field, for one density.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BeadField {
    seed: u64,
    density_per_um2: f64,
    tile_um: f64,
    mean_per_tile: f64,
}

/// The mean number of beads per tile the tile size aims at: few enough that the Poisson draw is
/// cheap, many enough that a field of view spans few tiles.
const TARGET_PER_TILE: f64 = 32.0;

impl BeadField {
    /// A field with `density_per_um2` beads per square micrometre. Fields built from the same
    /// seed and density hold the same beads.
    pub(crate) fn new(seed: u64, density_per_um2: f64) -> Self {
        let density = density_per_um2.max(0.0);
        // Tiles are a power of two micrometres wide, so that equal densities give equal tilings.
        let tile_um = if density > 0.0 {
            (TARGET_PER_TILE / density)
                .sqrt()
                .log2()
                .round()
                .clamp(0.0, 24.0)
                .exp2()
        } else {
            1.0
        };
        Self {
            seed,
            density_per_um2: density,
            tile_um,
            mean_per_tile: density * tile_um * tile_um,
        }
    }

    /// Calls `f` for every bead whose centre lies in the rectangle `[x0, x1] x [y0, y1]` (um).
    pub(crate) fn for_each_in(&self, x0: f64, x1: f64, y0: f64, y1: f64, mut f: impl FnMut(Bead)) {
        if self.density_per_um2 <= 0.0 || !(x1 >= x0 && y1 >= y0) {
            return;
        }
        let t = self.tile_um;
        let (tx0, tx1) = ((x0 / t).floor() as i64, (x1 / t).floor() as i64);
        let (ty0, ty1) = ((y0 / t).floor() as i64, (y1 / t).floor() as i64);
        for ty in ty0..=ty1 {
            for tx in tx0..=tx1 {
                let mut rng = Rng::new(self.tile_seed(tx, ty));
                let n = poisson(self.mean_per_tile, rng.uniform());
                for _ in 0..n {
                    let bead = Bead {
                        x: (tx as f64 + rng.uniform()) * t,
                        y: (ty as f64 + rng.uniform()) * t,
                        dye: (rng.next_u64() % DYES.len() as u64) as usize,
                        brightness: 0.7 + 0.6 * rng.uniform(),
                    };
                    if bead.x >= x0 && bead.x <= x1 && bead.y >= y0 && bead.y <= y1 {
                        f(bead);
                    }
                }
            }
        }
    }

    fn tile_seed(&self, tx: i64, ty: i64) -> u64 {
        let h = splitmix64(self.seed ^ splitmix64(tx as u64));
        splitmix64(h ^ (ty as u64).rotate_left(32))
    }
}

/// A Poisson draw with mean `lambda` by inverting the CDF at `u`. The mean stays near
/// [`TARGET_PER_TILE`], so the loop is short and `exp(-lambda)` cannot underflow.
fn poisson(lambda: f64, u: f64) -> u32 {
    let mut p = (-lambda).exp();
    let mut cdf = p;
    let mut k = 0u32;
    let cap = (lambda * 10.0) as u32 + 50;
    while u > cdf && k < cap {
        k += 1;
        p *= lambda / f64::from(k);
        cdf += p;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_is_reproducible_and_has_the_asked_density() {
        let density = 0.002;
        let field = BeadField::new(42, density);
        let mut first = Vec::new();
        field.for_each_in(-1000.0, 1000.0, -1000.0, 1000.0, |b| first.push(b));
        let mut second = Vec::new();
        BeadField::new(42, density)
            .for_each_in(-1000.0, 1000.0, -1000.0, 1000.0, |b| second.push(b));
        assert_eq!(first, second);
        let expected = density * 2000.0 * 2000.0;
        let n = first.len() as f64;
        assert!(
            (n - expected).abs() < 0.1 * expected,
            "{n} beads, expected ~{expected}"
        );
        // Far from the origin the density is the same.
        let mut far = 0usize;
        field.for_each_in(20_000.0, 22_000.0, -22_000.0, -20_000.0, |_| far += 1);
        assert!(
            (far as f64 - expected).abs() < 0.1 * expected,
            "{far} far beads"
        );
    }

    #[test]
    fn sub_rectangle_sees_the_same_beads() {
        let field = BeadField::new(1, 0.01);
        let mut all = Vec::new();
        field.for_each_in(0.0, 500.0, 0.0, 500.0, |b| all.push(b));
        let mut part = Vec::new();
        field.for_each_in(100.0, 200.0, 100.0, 200.0, |b| part.push(b));
        assert!(!part.is_empty());
        for b in &part {
            assert!(all.contains(b));
        }
    }
}
