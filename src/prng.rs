//! A seeded xorshift64* generator for tests: reproducible pseudo-random workloads
//! without a crate.

/// xorshift64*; the seed must not be 0.
pub(crate) struct Prng(pub(crate) u64);

impl Prng {
    /// The next value.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
