//! Sharded trace-id bloom filters (one file per shard).

use crate::model::TraceId;

const MAGIC: &[u8; 8] = b"TFBLOOM1";

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Two independent 64-bit hashes of a trace id (ids need not be random).
fn hashes(id: &TraceId) -> (u64, u64) {
    let hi = u64::from_le_bytes(id[..8].try_into().unwrap());
    let lo = u64::from_le_bytes(id[8..].try_into().unwrap());
    let h1 = mix(hi ^ mix(lo));
    (h1, mix(h1 ^ 0x9e37_79b9_7f4a_7c15) | 1)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Shard {
    k: u32,
    bits: Vec<u64>,
}

impl Shard {
    fn new(n: usize, fp: f64) -> Shard {
        let n = n.max(1) as f64;
        let m = (-n * fp.ln() / (std::f64::consts::LN_2 * std::f64::consts::LN_2)).ceil().max(64.0);
        let k = ((m / n) * std::f64::consts::LN_2).round().clamp(1.0, 16.0) as u32;
        Shard { k, bits: vec![0; (m as usize).div_ceil(64)] }
    }

    fn positions(&self, id: &TraceId) -> impl Iterator<Item = usize> + '_ {
        let (h1, h2) = hashes(id);
        let m = self.bits.len() as u64 * 64;
        (0..self.k as u64).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
    }

    fn insert(&mut self, id: &TraceId) {
        let pos: Vec<usize> = self.positions(id).collect();
        for p in pos {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    fn contains(&self, id: &TraceId) -> bool {
        self.positions(id).all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// How many trace ids a shard of `shard_bytes` holds at false-positive rate `fp`
/// (Tempo sizes shards in bytes: `bloom_filter_shard_size_bytes`).
pub fn traces_per_shard(shard_bytes: u64, fp: f64) -> usize {
    let bits_per_id = -fp.ln() / (std::f64::consts::LN_2 * std::f64::consts::LN_2);
    ((shard_bytes as f64 * 8.0 / bits_per_id) as usize).max(1)
}

/// A trace-id bloom filter split into shards; an id lives in one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    shards: Vec<Shard>,
}

impl Bloom {
    /// A filter for `ids` with false-positive rate `fp`, `per_shard` ids per shard.
    pub fn build(ids: &[TraceId], fp: f64, per_shard: usize) -> Bloom {
        let n = ids.len().div_ceil(per_shard.max(1)).max(1);
        let mut shards: Vec<Shard> = (0..n).map(|_| Shard::new(ids.len() / n + 1, fp)).collect();
        for id in ids {
            let s = Self::shard_of(id, n);
            shards[s].insert(id);
        }
        Bloom { shards }
    }

    fn shard_of(id: &TraceId, shards: usize) -> usize {
        (hashes(id).0 >> 32) as usize % shards
    }

    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    pub fn might_contain(&self, id: &TraceId) -> bool {
        self.shards[Self::shard_of(id, self.shards.len())].contains(id)
    }

    /// The file contents of shard `i`.
    pub fn encode_shard(&self, i: usize) -> Vec<u8> {
        let s = &self.shards[i];
        let mut out = Vec::with_capacity(16 + s.bits.len() * 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&s.k.to_le_bytes());
        out.extend_from_slice(&(s.bits.len() as u32).to_le_bytes());
        for w in &s.bits {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// A filter from its shard files, in shard order.
    pub fn decode(shards: &[Vec<u8>]) -> Result<Bloom, String> {
        if shards.is_empty() {
            return Err("no bloom shards".into());
        }
        let decode = |b: &[u8]| -> Result<Shard, String> {
            if b.len() < 16 || &b[..8] != MAGIC {
                return Err("bad bloom shard header".into());
            }
            let k = u32::from_le_bytes(b[8..12].try_into().unwrap());
            let words = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
            if b.len() != 16 + words * 8 || words == 0 || !(1..=64).contains(&k) {
                return Err("bad bloom shard size".into());
            }
            let bits = b[16..]
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            Ok(Shard { k, bits })
        };
        Ok(Bloom { shards: shards.iter().map(|b| decode(b)).collect::<Result<_, _>>()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::Rng;

    #[test]
    fn no_false_negatives_and_about_the_configured_fp_rate() {
        let mut rng = Rng::new(1);
        let ids: Vec<TraceId> = (0..20_000).map(|_| rng.bytes::<16>()).collect();
        let bloom = Bloom::build(&ids, 0.01, 5_000);
        assert_eq!(bloom.shards(), 4);
        assert!(ids.iter().all(|id| bloom.might_contain(id)));
        let fp = (0..20_000).filter(|_| bloom.might_contain(&rng.bytes::<16>())).count();
        assert!(fp < 400, "{fp} false positives in 20000");
        let shards: Vec<Vec<u8>> = (0..bloom.shards()).map(|i| bloom.encode_shard(i)).collect();
        assert_eq!(Bloom::decode(&shards).unwrap(), bloom);
        assert!(Bloom::decode(&[b"junk".to_vec()]).is_err());
    }

    #[test]
    fn shard_sizes_follow_tempo_bytes() {
        // Tempo's defaults: 100 KiB shards at 1% hold ~85,000 ids.
        let n = traces_per_shard(102_400, 0.01);
        assert!((80_000..90_000).contains(&n), "{n}");
        let ids: Vec<TraceId> = (0..n as u128).map(|i| i.to_be_bytes()).collect();
        let bloom = Bloom::build(&ids, 0.01, n);
        assert_eq!(bloom.shards(), 1);
        assert!(bloom.encode_shard(0).len() <= 102_400 + 64);
    }

    #[test]
    fn sequential_ids_spread_too() {
        let ids: Vec<TraceId> = (1..=1000u128).map(|i| i.to_be_bytes()).collect();
        let bloom = Bloom::build(&ids, 0.01, 100);
        assert!(ids.iter().all(|id| bloom.might_contain(id)));
        let fp = (5000..15000u128).filter(|i| bloom.might_contain(&i.to_be_bytes())).count();
        assert!(fp < 300, "{fp}");
    }
}
