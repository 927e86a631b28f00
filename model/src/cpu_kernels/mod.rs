//! Kernels for the CPU backend (burn's `flex`): the CPU counterpart of `kernels/` (WebGPU).
//! Here: softmax and the erf GELU, with an exp and an erf written to vectorize; in `matmul.rs`,
//! the projections' matmul on wasm SIMD (`f32x4.rs`: its four lanes, portable for native tests).
//!
//! Why: a profile of BERT on the CPU in the browser (MiniLM, 127 tokens) put ~19% of the time in
//! these two ops, nearly all of it in libm's scalar `expf` and `erff`, one call per element, while
//! the matmuls (65%) already run in SIMD. The functions below are branch-free arithmetic on `f32`
//! (a polynomial exp, a rational erf), which LLVM turns into SIMD loops (simd128 in the browser).
//!
//! Each runs burn's own op where it does not apply: another backend, under autodiff (training
//! keeps burn's ops and their backward), other dtypes. The formulas are PyTorch's
//! (`0.5·x·(1 + erf(x/√2))`, `exp(x − max) / Σ`); only exp and erf are approximations: exp
//! within 2.5e-7 relative, erf within 5e-7 absolute (tests below, against libm's f64), far inside
//! the parity tolerances (1e-4 on logits).

mod f32x4;
mod matmul;

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::{activation, DType, Tensor, TensorData};

/// Whether `x` is an f32 tensor of the CPU backend, outside autodiff: where these functions run.
fn on_flex<const D: usize>(x: &Tensor<D>) -> bool {
    !x.device().is_autodiff()
        && x.dtype() == DType::F32
        && x.clone().try_into_primitive::<Flex>().is_ok()
}

/// The CPU backend's tensor under `x` (checked by [`on_flex`]).
fn flex<const D: usize>(x: Tensor<D>) -> FlexTensor {
    x.try_into_primitive::<Flex>().expect("checked by on_flex")
}

/// Whether [`linear`] runs for these operands: in the browser (wasm SIMD), on the CPU backend
/// outside autodiff, in f32, for at least `matmul::ROWS_MIN` rows (decoding keeps burn's matmul).
pub fn linear_applies<const D: usize>(x: &Tensor<D>, w: &Tensor<2>, b: Option<&Tensor<1>>) -> bool {
    let rows = x.dims()[..D - 1].iter().product::<usize>();
    cfg!(all(target_arch = "wasm32", target_feature = "simd128"))
        && rows >= matmul::ROWS_MIN
        && on_flex(x)
        && on_flex(w)
        && b.is_none_or(on_flex)
}

/// `x · w + b` with `w` `[in, out]`, by `matmul::matmul` (see [`linear_applies`]).
pub fn linear<const D: usize>(x: Tensor<D>, w: &Tensor<2>, b: Option<&Tensor<1>>) -> Tensor<D> {
    let mut dims = x.dims();
    let [k, n] = w.dims();
    let m = dims[..D - 1].iter().product::<usize>();
    let x = flex(x).to_contiguous();
    let x = x.as_slice::<f32>().expect("contiguous f32");
    let w = flex(w.clone());
    // burn's `[in, out]` view as it is (strides), or a plain copy where a stride is negative.
    let w = match *w.layout().strides() {
        [s0, s1] if s0 >= 0 && s1 >= 0 => w,
        _ => w.to_contiguous(),
    };
    let strides = w.layout().strides();
    let weight = matmul::Weight {
        values: w.storage(),
        offset: w.layout().start_offset(),
        strides: [strides[0] as usize, strides[1] as usize],
    };
    let b = b.map(|b| flex(b.clone()).to_contiguous());
    let b = b
        .as_ref()
        .map(|b| b.as_slice::<f32>().expect("contiguous f32"));
    let y = matmul::matmul(x, m, k, &weight, n, b);
    dims[D - 1] = n;
    let y: Tensor<2> =
        Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(y, [m, n])));
    y.reshape(dims)
}

/// Applies `f` to the values of `t`, row by row (`row` values each), in place when `t` owns a
/// contiguous buffer, else on a copy.
fn map_rows<const D: usize>(t: FlexTensor, row: usize, f: impl Fn(&mut [f32])) -> Tensor<D> {
    let n = t.layout().num_elements();
    let mut t = if t.layout().contiguous_offsets() == Some((0, n)) {
        t
    } else {
        let shape = t.layout().shape().clone();
        let values = t
            .to_contiguous()
            .as_slice::<f32>()
            .expect("contiguous f32")
            .to_vec();
        FlexTensor::from_data(TensorData::new(values, shape))
    };
    // Copied first if another tensor shares the buffer (a clone the caller kept).
    t.storage_mut::<f32>()[..n].chunks_mut(row).for_each(f);
    Tensor::from_primitive::<Flex>(t)
}

/// HF `gelu` (erf): `0.5·x·(1 + erf(x/√2))`; burn's op where this does not apply.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !on_flex(&x) {
        return activation::gelu(x);
    }
    let row = x.dims()[D - 1].max(1);
    // `x` is consumed: its buffer, if no one else holds it, is written in place.
    let t = flex(x);
    map_rows(t, row, |values| {
        for v in values {
            *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    })
}

/// Softmax over the last dimension; burn's op where this does not apply.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let row = x.dims()[D - 1];
    if row == 0 || !on_flex(&x) {
        return activation::softmax(x, D - 1);
    }
    map_rows(flex(x), row, softmax_row)
}

fn softmax_row(values: &mut [f32]) {
    let max = max(values);
    for v in values.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / sum(values);
    for v in values.iter_mut() {
        *v *= inv;
    }
}

/// Eight running values, so that the loop vectorizes (a single one is a serial dependency).
const LANES: usize = 8;

fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    tail.iter()
        .chain(&acc)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

/// `e^x` (Cephes' `expf`: x = n·ln 2 + r, |r| ≤ ln 2 / 2, a degree-5 polynomial for e^r, then
/// 2^n put in the exponent bits). 0 below −87 (where e^x leaves the normal floats; softmax's
/// masked scores land there), e^88 above 88.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // Adding 1.5·2^23 rounds to an integer, which then sits in the low bits of the mantissa.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.0, 88.0);
    let t = xc * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    let k = t.to_bits() as i32 - ROUND.to_bits() as i32; // n as an integer, −126..=127
    let scale = f32::from_bits(((k + 127) << 23) as u32);
    if x < -87.0 {
        0.0
    } else {
        er * scale
    }
}

/// erf(x), as a rational function of x on [−4, 4] (odd numerator of degree 13 over an even
/// denominator of degree 8; Eigen's and XLA's f32 erf), ±1 beyond (erf(4) = 1 − 1.5e−8).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906_3e-4;
    p = p * x2 - 2.954_6e-3;
    p = p * x2 - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329e-3;
    q = q * x2 - 1.426_473_9e-2;
    x * p / q
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::device::cpu;

    /// Every f32 step of 1/4096 over the range that matters, and the far tails.
    fn grid(lo: f32, hi: f32) -> impl Iterator<Item = f32> {
        let n = ((hi - lo) * 4096.0) as i32;
        (0..=n)
            .map(move |i| lo + i as f32 / 4096.0)
            .chain([lo * 10.0, hi * 10.0])
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut worst = 0.0f64;
        for x in grid(-87.0, 88.0) {
            let (ours, libm) = (exp(x) as f64, (x as f64).exp());
            if (-87.0..=88.0).contains(&x) {
                worst = worst.max(((ours - libm) / libm).abs());
            }
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn erf_is_within_5e_7_of_libm() {
        let mut worst = 0.0f64;
        for x in grid(-6.0, 6.0) {
            worst = worst.max((erf(x) as f64 - libm::erf(x as f64)).abs());
        }
        // 4.3e-7, at x ≈ ±3.08 (libm's erff: 4.4e-8); in GELU that is under 1e-6 for |x| < 4.6.
        assert!(worst < 5e-7, "worst absolute error {worst:e}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(-2.0), -erf(2.0));
    }

    fn random(shape: [usize; 3], scale: f32) -> Tensor<3> {
        let n = shape.iter().product::<usize>();
        // A fixed, spread-out sequence (no RNG state to seed).
        let values: Vec<f32> = (0..n)
            .map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * scale)
            .collect();
        Tensor::from_data(TensorData::new(values, shape), &cpu())
    }

    fn values(t: Tensor<3>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    fn close(a: Tensor<3>, b: Tensor<3>, tol: f32) {
        let (a, b) = (values(a), values(b));
        assert_eq!(a.len(), b.len());
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(worst <= tol, "worst difference {worst:e}");
    }

    #[test]
    fn gelu_matches_burns() {
        let x = random([2, 7, 33], 16.0);
        assert!(on_flex(&x));
        let ours = gelu(x.clone());
        close(ours, activation::gelu(x), 2e-6);
    }

    #[test]
    fn softmax_matches_burns_with_masked_scores() {
        let x = random([3, 5, 37], 20.0);
        // A masked key, as `nn::attention` writes it.
        let mask = Tensor::<3>::zeros([3, 5, 37], &cpu())
            .slice_assign([0..3, 0..5, 3..4], Tensor::ones([3, 5, 1], &cpu()));
        let x = x.mask_fill(mask.equal_elem(1.0), f32::MIN);
        assert!(on_flex(&x));
        let ours = softmax_last(x.clone());
        close(ours.clone(), activation::softmax(x, 2), 1e-6);
        let masked = values(ours.slice([0..3, 0..5, 3..4]));
        assert!(masked.iter().all(|&p| p == 0.0), "{masked:?}");
    }

    #[test]
    fn a_view_is_not_written_through() {
        // A transposed view shares its buffer with `x`: the result must be new, `x` unchanged.
        let x = random([2, 6, 6], 4.0);
        let before = x.clone().into_data();
        let ours = softmax_last(x.clone().swap_dims(1, 2));
        close(
            ours,
            activation::softmax(x.clone().swap_dims(1, 2), 2),
            1e-6,
        );
        assert_eq!(x.into_data(), before);
    }

    #[test]
    fn a_tensor_owned_alone_is_written_in_place_with_the_same_result() {
        let buffer = |t: &Tensor<3>| {
            t.clone()
                .try_into_primitive::<Flex>()
                .unwrap()
                .bytes()
                .as_ptr()
        };
        let expected = activation::gelu(random([1, 9, 40], 8.0));
        let x = random([1, 9, 40], 8.0);
        let before = buffer(&x);
        let ours = gelu(x);
        assert_eq!(buffer(&ours), before, "written in place");
        close(ours, expected, 2e-6);
    }

    /// `x · w + b` by burn's ops, the reference.
    fn reference(x: Tensor<3>, w: Tensor<2>, b: Option<Tensor<1>>) -> Tensor<3> {
        let y = x.matmul(w.unsqueeze::<3>());
        match b {
            Some(b) => y + b.unsqueeze::<3>(),
            None => y,
        }
    }

    #[test]
    fn linear_matches_burns_matmul_at_every_edge() {
        // Rows and columns that fill no tile, one, and some with a remainder; k from 1 up; the
        // weight as the loader leaves it (a transposed view of `[out, in]`) and plain.
        for (m, k, n) in [
            (1, 1, 1),
            (3, 7, 5),
            (4, 8, 8),
            (17, 33, 13),
            (16, 64, 24),
            (9, 5, 30),
        ] {
            let x = random([1, m, k], 2.0);
            let w_out_in = random([1, n, k], 1.0).reshape([n, k]);
            let bias = random([1, 1, n], 3.0).reshape([n]);
            for (w, plain) in [
                (w_out_in.clone().transpose(), false),
                (w_out_in.clone().transpose() * 1.0, true),
            ] {
                for b in [None, Some(bias.clone())] {
                    assert!(on_flex(&x) && on_flex(&w));
                    let what = format!("m {m} k {k} n {n}, plain {plain}, bias {}", b.is_some());
                    let ours = linear(x.clone(), &w, b.as_ref());
                    assert_eq!(ours.dims(), [1, m, n], "{what}");
                    let expected = reference(x.clone(), w.clone(), b);
                    let (a, e) = (values(ours), values(expected));
                    let worst = a
                        .iter()
                        .zip(&e)
                        .map(|(a, e)| (a - e).abs())
                        .fold(0.0, f32::max);
                    assert!(worst <= 1e-5, "{what}: worst difference {worst:e}");
                }
            }
        }
    }
}
