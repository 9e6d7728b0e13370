//! Which record a cursor index reads: with `n` usable records, index `i` is position
//! `i mod n` of epoch `⌊i / n⌋`, and epoch `e`'s order is a permutation of `0..n` drawn from
//! ChaCha8 seeded with the run seed on stream `e` (a new order every epoch, the same one on
//! every run with that seed), or file order when shuffling is off.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// `(epoch, position)` of cursor index `index` over `n > 0` records.
pub fn locate(index: u64, n: usize) -> (u64, usize) {
    let n = n as u64;
    (index / n, (index % n) as usize)
}

/// The record order of `epoch`.
pub fn epoch_order(n: usize, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(epoch);
        order.shuffle(&mut rng);
    }
    order
}
