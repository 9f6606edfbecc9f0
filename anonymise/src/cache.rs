//! A bounded exact-address cache: open addressing in two-slot buckets, a multiplicative hash,
//! no locks (one per thread).
//!
//! The table has a power-of-two number of slots. A key hashes to a bucket of two adjacent slots
//! (one cache line for IPv4); a hit is an exact key match in either slot. On a miss the new entry
//! goes into the first slot and the entry that was there moves to the second, dropping the
//! second's (so a bucket keeps its two most recently inserted keys).
//!
//! Empty slots need no flag: every slot starts as the entry of the all-zero address with its
//! real mapping, computed when the cache is created, so a match on an "empty" slot is correct.

/// Keys the cache can hold.
pub(crate) trait CacheKey: Copy + Eq {
    fn hash(self, shift: u32) -> usize;
}

impl CacheKey for u32 {
    #[inline(always)]
    fn hash(self, shift: u32) -> usize {
        (u64::from(self).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize
    }
}

impl CacheKey for u128 {
    #[inline(always)]
    fn hash(self, shift: u32) -> usize {
        let folded = (self as u64) ^ ((self >> 64) as u64).rotate_left(29);
        (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize
    }
}

/// The cache. A cache of zero entries is disabled: every lookup misses, nothing is stored.
pub(crate) struct Cache<K: CacheKey> {
    slots: Vec<(K, K)>,
    /// 64 - log2(number of buckets).
    shift: u32,
}

impl<K: CacheKey> Cache<K> {
    /// At least `entries` slots (rounded up to a power of two), the empty slots holding
    /// `(zero, mapped_zero)`.
    pub(crate) fn new(entries: usize, zero: K, mapped_zero: K) -> Cache<K> {
        if entries == 0 {
            return Cache {
                slots: Vec::new(),
                shift: 64,
            };
        }
        let slots = entries.max(2).next_power_of_two();
        let buckets = slots / 2;
        Cache {
            slots: vec![(zero, mapped_zero); slots],
            shift: 64 - buckets.trailing_zeros(),
        }
    }

    /// Number of slots (0 when disabled).
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The index of the first slot of `key`'s bucket (the table must not be empty).
    #[inline(always)]
    fn bucket(&self, key: K) -> usize {
        let b = if self.shift >= 64 {
            0
        } else {
            key.hash(self.shift)
        };
        b * 2
    }

    #[inline(always)]
    pub(crate) fn get(&self, key: K) -> Option<K> {
        if self.slots.is_empty() {
            return None;
        }
        let i = self.bucket(key);
        let (s0, s1) = (self.slots[i], self.slots[i + 1]);
        if s0.0 == key {
            Some(s0.1)
        } else if s1.0 == key {
            Some(s1.1)
        } else {
            None
        }
    }

    /// Asks the CPU to bring `key`'s bucket into cache, so that a [`Cache::get`] soon after
    /// does not wait for memory. Only a hint: nothing is read or changed.
    #[inline(always)]
    pub(crate) fn prefetch(&self, key: K) {
        if self.slots.is_empty() {
            return;
        }
        let i = self.bucket(key);
        prefetch_read(self.slots[i..].as_ptr());
    }

    #[inline(always)]
    pub(crate) fn insert(&mut self, key: K, value: K) {
        if self.slots.is_empty() {
            return;
        }
        let i = self.bucket(key);
        if self.slots[i].0 != key {
            self.slots[i + 1] = self.slots[i];
        }
        self.slots[i] = (key, value);
    }
}

/// A read prefetch of the cache line at `p`; nothing on targets without one. The crate's only
/// `unsafe` outside the kernel-key module: the intrinsic is declared unsafe because it needs
/// SSE, which every x86_64 CPU has.
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch_read<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86_64 baseline, so the instruction exists; a prefetch never
    // faults, whatever the address, and reads nothing into the program.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefetch_changes_nothing() {
        let mut c = Cache::<u32>::new(64, 0, 0xdead);
        c.insert(7, 8);
        for k in 0..1000u32 {
            c.prefetch(k);
        }
        Cache::<u32>::new(0, 0, 0).prefetch(7);
        assert_eq!(c.get(7), Some(8));
        assert_eq!(c.get(0), Some(0xdead));
        assert_eq!(c.get(9), None);
    }

    #[test]
    fn hits_after_insert_and_bounded() {
        let mut c = Cache::<u32>::new(1000, 0, 0xdead);
        assert_eq!(c.capacity(), 1024);
        assert_eq!(c.get(0), Some(0xdead));
        assert_eq!(c.get(5), None);
        c.insert(5, 6);
        assert_eq!(c.get(5), Some(6));
        for k in 0..100_000u32 {
            c.insert(k, k ^ 0xdead);
        }
        assert_eq!(c.capacity(), 1024);
        let hits = (0..100_000u32).filter(|&k| c.get(k).is_some()).count();
        assert!(hits <= 1024);
        for k in 0..100_000u32 {
            if let Some(v) = c.get(k) {
                assert_eq!(v, k ^ 0xdead);
            }
        }
    }

    #[test]
    fn disabled_never_hits() {
        let mut c = Cache::<u128>::new(0, 0, 1);
        c.insert(3, 4);
        assert_eq!(c.get(3), None);
        assert_eq!(c.get(0), None);
    }
}
