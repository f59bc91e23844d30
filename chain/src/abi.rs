//! The few Solidity ABI words the crate needs: every static value `abi.encode` writes is one
//! 32-byte big-endian word, numbers left-padded with zeros.

/// One ABI word.
pub(crate) type Word = [u8; 32];

/// A `uint<N>` value (N ≤ 128) as its word.
pub(crate) fn uint(value: u128) -> Word {
    let mut word = [0; 32];
    word[16..].copy_from_slice(&value.to_be_bytes());
    word
}

/// `abi.encode` of static values: their words, one after another.
pub(crate) fn encode<const N: usize>(words: [Word; N]) -> Vec<u8> {
    words.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_big_endian_and_left_padded() {
        let w = uint(0x0102);
        assert_eq!(&w[..30], &[0; 30]);
        assert_eq!(&w[30..], &[1, 2]);
        assert_eq!(uint(u128::MAX)[..16], [0; 16]);
        assert_eq!(uint(u128::MAX)[16..], [0xff; 16]);
        assert_eq!(encode([uint(1), uint(2)]).len(), 64);
    }
}
