//! Instruction-set capability tokens: the only way into the SIMD kernels.
//!
//! [`Avx2`] (AVX2 + FMA) and [`Avx512`] (AVX-512 F/BW/VL, which implies AVX2 + FMA here) are
//! zero-sized values with a private field: outside this module they can only be obtained from
//! `try_new`, which returns `None` unless the running CPU was seen to have the instructions
//! (`is_x86_feature_detected!`). Every kernel that uses those instructions takes the token (or an
//! [`Isa`] holding one) as an argument, so no safe function can reach an unsupported
//! instruction — the tokens play the part of pulp's `V3`/`V4`:
//!
//! ```compile_fail
//! // A token cannot be made without detection:
//! let t = nashmp::kernels::isa::Avx2 { _detected: () };
//! ```
//!
//! **Cross-ISA rule.** Every kernel gives the same bits whichever [`Isa`] runs it (scalar, AVX2 or
//! AVX-512): the wider paths keep the AVX2 path's lanes and summation order, and the scalar twins
//! emulate it (fused multiply-adds through `mul_add`). So results, sweeps and checkpoints do not
//! depend on the machine's instruction set; the tests check the bits of every path against each
//! other.

use std::sync::OnceLock;

/// AVX2 and FMA were detected on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx2 {
    _detected: (),
}

/// AVX-512 F, BW and VL (and AVX2, FMA) were detected on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx512 {
    _detected: (),
}

impl Avx2 {
    /// The token, if the CPU has AVX2 and FMA.
    pub fn try_new() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some(Avx2 { _detected: () });
        }
        None
    }
}

impl Avx512 {
    /// The token, if the CPU has AVX-512 F/BW/VL, AVX2 and FMA.
    pub fn try_new() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if Avx2::try_new().is_some()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return Some(Avx512 { _detected: () });
        }
        None
    }

    /// AVX-512 implies AVX2 and FMA.
    pub fn avx2(self) -> Avx2 {
        Avx2 { _detected: () }
    }
}

/// Which kernels to run: the portable scalar twin, or a SIMD path with its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    Avx2(Avx2),
    Avx512(Avx512),
}

impl Isa {
    /// The widest instruction set this CPU has (detected once). `NASHMP_ISA=scalar|avx2` caps it
    /// (for benchmarks comparing the paths; results are the same bits whichever runs).
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            let cap = std::env::var("NASHMP_ISA").unwrap_or_default();
            let found = Self::detected();
            match cap.as_str() {
                "scalar" => Isa::Scalar,
                "avx2" => found.capped_avx2(),
                _ => found,
            }
        })
    }

    /// The widest instruction set detected, ignoring `NASHMP_ISA`.
    pub fn detected() -> Isa {
        if let Some(t) = Avx512::try_new() {
            Isa::Avx512(t)
        } else if let Some(t) = Avx2::try_new() {
            Isa::Avx2(t)
        } else {
            Isa::Scalar
        }
    }

    /// At most AVX2.
    pub fn capped_avx2(self) -> Isa {
        match self {
            Isa::Avx512(t) => Isa::Avx2(t.avx2()),
            other => other,
        }
    }

    /// Every instruction set this CPU can run, narrowest first (for tests and benchmarks).
    pub fn available() -> Vec<Isa> {
        let mut v = vec![Isa::Scalar];
        if let Some(t) = Avx2::try_new() {
            v.push(Isa::Avx2(t));
        }
        if let Some(t) = Avx512::try_new() {
            v.push(Isa::Avx512(t));
        }
        v
    }

    /// The AVX2 token, if this is a SIMD instruction set.
    pub fn avx2(self) -> Option<Avx2> {
        match self {
            Isa::Scalar => None,
            Isa::Avx2(t) => Some(t),
            Isa::Avx512(t) => Some(t.avx2()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2(_) => "avx2",
            Isa::Avx512(_) => "avx512",
        }
    }
}

/// Alignment (bytes, one cache line) of the kernels' vector buffers: a 64-byte load from a
/// buffer that is not aligned splits across two lines (the dense batched grid on eight rows of
/// 512 columns, rows and vectors in L1, ran at 3.32 G FMA/s for 8 vectors and 2.93 for 16 with
/// the vectors 16 bytes off a line, 3.59 and 3.70 aligned).
pub const SIMD_ALIGN: usize = 64;

/// How far ahead of its reads a kernel streaming one sequence asks for data: bytes beyond the
/// current position (the packed tile kernels: one row block of a `u16` tile).
///
/// Why: on this machine (a KVM guest on a Xeon with AVX-512), a loop that converts and
/// multiplies what it streams does not overlap that work with the stream when only the hardware
/// prefetchers run: one core took 26.4 ms over 256 MiB of `u16` (convert, two FMAs per value)
/// against 18.5 ms for a plain read, and 19.8 ms with a `prefetcht1` of each line 4 KiB ahead
/// (`prefetcht0` at 1–16 KiB 23–30 ms). The distance was chosen on the packed u16 apply
/// (n = 16384, two interleaved runs): 1 KiB 14.4 ms, 2 KiB 12.5–12.8, 3 KiB 11.4, 4 KiB
/// 10.7–11.0, 6 KiB 12.2, 8 KiB 12.6, 16 KiB 12.5–12.9, 32 KiB 12.6–12.7.
pub const PREFETCH_STREAM: usize = 4096;

/// The distance for streams read more slowly, several at once or with more work per byte (the
/// dense batched grid's eight rows, the conversion of a `u16` row block for a batch): n = 16384,
/// two interleaved runs, 2 KiB against 4 KiB: dense f32 batch of 16 62.4–63.2 against
/// 64.4 ms, packed u16 batch of 8 35.8–36.2 against 37.0–43.3 ms.
pub const PREFETCH_SLOW: usize = 2048;

/// Asks for the 64-byte line holding `p` in L2 (`prefetcht1`). A hint: it never faults and
/// changes no result, so `p` may be anywhere (it is never dereferenced).
#[inline(always)]
pub fn prefetch_l2<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT1 is part of SSE (baseline on x86_64) and never faults, whatever the
    // address; it reads nothing into the program.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`prefetch_l2`] of every line of `bytes` bytes starting `D` bytes past `p`.
#[inline(always)]
pub fn prefetch_ahead<const D: usize, T>(p: *const T, bytes: usize) {
    let q = (p as *const u8).wrapping_add(D);
    let mut off = 0;
    while off < bytes {
        prefetch_l2(q.wrapping_add(off));
        off += 64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_detection() {
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(
                Avx2::try_new().is_some(),
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            );
            assert_eq!(
                Avx512::try_new().is_some(),
                Avx2::try_new().is_some()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            );
        }
        let all = Isa::available();
        assert_eq!(all[0], Isa::Scalar);
        assert_eq!(*all.last().unwrap(), Isa::detected());
        assert_eq!(Isa::detected().capped_avx2().avx2(), Avx2::try_new());
    }
}
