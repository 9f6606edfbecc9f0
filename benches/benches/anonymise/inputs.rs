//! Address streams for the anonymiser benchmarks (shared by the criterion bench and the ratio
//! report): uniformly random addresses, and a trace-like stream with Zipf popularity over
//! clustered prefixes.

#![allow(dead_code)]

use std::collections::HashSet;

/// splitmix64: a small deterministic generator, so every run sees the same inputs.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// `n` uniformly random IPv4 addresses.
pub fn uniform_v4(n: usize, seed: u64) -> Vec<[u8; 4]> {
    let mut r = Rng(seed);
    (0..n)
        .map(|_| (r.next_u64() as u32).to_be_bytes())
        .collect()
}

/// `n` uniformly random IPv6 addresses.
pub fn uniform_v6(n: usize, seed: u64) -> Vec<[u8; 16]> {
    let mut r = Rng(seed);
    (0..n)
        .map(|_| ((u128::from(r.next_u64()) << 64) | u128::from(r.next_u64())).to_be_bytes())
        .collect()
}

/// Ranks 0..n drawn with Zipf(s) popularity (rank k has weight 1/(k+1)^s).
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n` ranks.
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 0..n {
            total += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    /// One rank.
    pub fn sample(&self, r: &mut Rng) -> usize {
        let u = r.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// A trace-like IPv4 stream: `n` addresses drawn from `distinct` distinct ones with Zipf(`s`)
/// popularity. The distinct addresses are clustered: 256 /16s, each with up to 64 /24s, hosts
/// in each /24 random; the popular /16s and /24s hold more addresses (Zipf 1.0 over them too),
/// and popularity ranks are shuffled so rank does not follow the prefix.
pub fn trace_like_v4(n: usize, distinct: usize, s: f64, seed: u64) -> Vec<[u8; 4]> {
    let mut r = Rng(seed);
    let slash16: Vec<u32> = (0..256)
        .map(|_| (r.next_u64() as u32) & 0xffff_0000)
        .collect();
    let slash24: Vec<Vec<u32>> = slash16
        .iter()
        .map(|&p| {
            (0..64)
                .map(|_| p | ((r.next_u64() as u32) & 0xff00))
                .collect()
        })
        .collect();
    let pick16 = Zipf::new(slash16.len(), 1.0);
    let pick24 = Zipf::new(64, 1.0);
    let mut seen = HashSet::with_capacity(distinct);
    let mut pool = Vec::with_capacity(distinct);
    while pool.len() < distinct {
        let i = pick16.sample(&mut r);
        let j = pick24.sample(&mut r);
        let a = slash24[i][j] | (r.next_u64() as u32 & 0xff);
        if seen.insert(a) {
            pool.push(a);
        }
    }
    // Shuffle (Fisher-Yates) so popularity does not follow the cluster order.
    for i in (1..pool.len()).rev() {
        let j = r.below(i + 1);
        pool.swap(i, j);
    }
    let zipf = Zipf::new(distinct, s);
    (0..n)
        .map(|_| pool[zipf.sample(&mut r)].to_be_bytes())
        .collect()
}
