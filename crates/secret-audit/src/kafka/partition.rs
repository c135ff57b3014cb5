//! The partitioner: Kafka's default for keyed records (the Java client's
//! `BuiltInPartitioner.partitionForKey`), so that every producer of the topic, in any
//! language, puts one key on one partition.

/// Kafka's 32-bit murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`): seed `0x9747b28c`,
/// little-endian 4-byte words, the tail folded in, then the final mix.
#[must_use]
pub(crate) fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // The Java client takes the length as an int; a key is never near 2^31 bytes.
    let mut h = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for word in &mut chunks {
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of `key` among `partitions` (at least 1): `toPositive(murmur2(key)) %
/// partitions`, as the Java client computes it.
#[must_use]
pub(crate) fn partition_for(key: &[u8], partitions: usize) -> usize {
    let positive = (murmur2(key) & 0x7fff_ffff) as u32;
    (positive as usize) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apache Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, hash) in cases {
            assert_eq!(murmur2(key), hash, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn partitions_are_the_positive_hash_modulo_the_count() {
        // toPositive(-790332482) = 1357151166; 1357151166 % 50 = 16.
        assert_eq!(partition_for(b"foobar", 50), 16);
        assert_eq!(partition_for(b"foobar", 1), 0);
        assert_eq!(
            partition_for(b"foobar", 0),
            0,
            "no partitions is treated as one"
        );
        let key = b"8cbd64017dc68f7258e00a0a7a0f572c";
        for count in 1..=64 {
            let p = partition_for(key, count);
            assert!(p < count);
            assert_eq!(p, partition_for(key, count), "stable");
        }
        // Spread: 32-hex keys land on every one of 4 partitions.
        let mut seen = [false; 4];
        for i in 0..64u32 {
            seen[partition_for(format!("{i:032x}").as_bytes(), 4)] = true;
        }
        assert_eq!(seen, [true; 4]);
    }
}
