//! Hand-written WebGPU kernels for inference: fewer, larger dispatches on the hot path.
//! `workgroup.rs` holds the ones for a real GPU, `serial.rs` those for a software adapter (the
//! worker says which it has: `set_software_adapter`).
//!
//! Why: in the browser every burn op is a kernel launch that costs ~0.1–0.2 ms of the worker's
//! CPU time (burn's op dispatch, cubecl's launch, bind groups, the WebGPU calls), whatever the
//! GPU. A GPT-2 block written with burn ops is ~50 launches per token (layer norm alone is
//! eleven, the tanh GELU eight), so decoding was bound by the worker's CPU, not the GPU (see the
//! Bench page's operation timings). Each function here does in one launch what took several.
//!
//! Each returns `None` where it does not apply, and the caller then runs the burn ops it always
//! did: on the CPU backend, under autodiff (training: these have no backward), for dtypes other
//! than f32, for views that are not plain contiguous buffers, and for shapes a kernel does not
//! cover. The arithmetic is the same as the burn ops' (f32, same formulas); only the summation
//! order differs, well inside the parity tolerances (checked by the device check on WebGPU and
//! by the tests at the end of this file against the CPU backend, for both families).

use burn::backend::Wgpu;
use burn::tensor::{DType, Shape, Tensor};
// The `#[cube]` macros name `cubecl::…`: burn's own copy, so the versions always agree.
use burn_cubecl::cubecl;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use crate::nn::Activation;

/// The activation a kernel applies after the bias, as a compile-time switch.
fn act_code(act: Option<Activation>) -> u32 {
    match act {
        None => 0,
        Some(Activation::GeluTanh) => 1,
        Some(Activation::Gelu) => 2,
        Some(Activation::Relu) => 3,
    }
}

#[cube]
pub(crate) fn activate(x: f32, #[comptime] act: u32) -> f32 {
    let mut y = x;
    if act == 1 {
        // HF `gelu_new`: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        let inner = 0.797_884_6f32 * (x + 0.044715f32 * x * x * x);
        y = 0.5f32 * x * (1.0f32 + f32::tanh(inner));
    } else if act == 2 {
        // HF `gelu` (erf): 0.5·x·(1 + erf(x/√2))
        y = 0.5f32 * x * (1.0f32 + Erf::erf(x * 0.707_106_77f32));
    } else if act == 3 {
        y = f32::max(x, 0.0f32);
    }
    y
}

/// The projections' last step for output `(row, col)` of `[_, n]`: `act(y + bias) (+ res)`,
/// stored.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(crate) fn store_projection(
    out: &mut [f32],
    bias: &[f32],
    res: &[f32],
    y: f32,
    row: usize,
    col: usize,
    n: usize,
    #[comptime] has_bias: bool,
    #[comptime] act: u32,
    #[comptime] has_res: bool,
) {
    let mut y = y;
    if has_bias {
        y += bias[col];
    }
    let mut y = activate(y, act);
    if has_res {
        y += res[row * n + col];
    }
    out[row * n + col] = y;
}

mod serial;
mod wide_gemm;
mod workgroup;

use std::sync::atomic::{AtomicBool, Ordering};

use serial::*;
use wide_gemm::*;
use workgroup::*;

static SOFTWARE: AtomicBool = AtomicBool::new(false);

/// Says whether the WebGPU adapter is a software renderer (SwiftShader, lavapipe): there the
/// serial kernels run, and larger matrices and encoder attention go to burn's ops. The worker
/// sets it once, when it starts WebGPU (`device::set_software_adapter`).
pub fn set_software_adapter(software: bool) {
    SOFTWARE.store(software, Ordering::Relaxed);
}

fn software() -> bool {
    SOFTWARE.load(Ordering::Relaxed)
}

fn elementwise(t: &CubeTensor, units: usize) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new(&t.client, units);
    (
        cubecl::calculate_cube_count_elemwise(&t.client, units, dim),
        dim,
    )
}

/// The tensor as a plain f32 WebGPU buffer (row-major, every element once), or `None`.
fn buffer<const D: usize>(t: &Tensor<D>) -> Option<CubeTensor> {
    view(t).filter(|c| c.is_contiguous())
}

/// The tensor as an f32 WebGPU buffer read through its strides (a slice's offset is part of
/// its binding), or `None` on the CPU backend, under autodiff, or for other dtypes.
fn view<const D: usize>(t: &Tensor<D>) -> Option<CubeTensor> {
    if t.device().is_autodiff() {
        return None;
    }
    let c = t.clone().try_into_primitive::<Wgpu>().ok()?;
    (c.dtype == DType::F32 && c.qparams.is_none()).then_some(c)
}

fn arg(t: &CubeTensor) -> BufferArg {
    let len = t.handle.size_in_used() as usize / std::mem::size_of::<f32>();
    // SAFETY: the binding covers `len` f32s; each kernel reads inside the tensor's own extent.
    unsafe { BufferArg::from_raw_parts(t.handle.clone(), len) }
}

fn empty_like(t: &CubeTensor, dims: Vec<usize>) -> CubeTensor {
    empty_device_dtype(
        t.client.clone(),
        t.device.clone(),
        Shape::from(dims),
        DType::F32,
    )
}

/// WebGPU's limit on workgroups along one dimension of a dispatch.
const MAX_GROUPS: usize = 65_535;

fn groups(n: usize) -> Option<u32> {
    (n <= MAX_GROUPS).then_some(n as u32)
}

/// Layer norm over the last dimension in one launch.
pub fn layer_norm<const D: usize>(
    x: &Tensor<D>,
    weight: &Tensor<1>,
    bias: &Tensor<1>,
    eps: f64,
) -> Option<Tensor<D>> {
    let (xc, wc, bc) = (buffer(x)?, buffer(weight)?, buffer(bias)?);
    let dims = x.dims();
    let cols = dims[D - 1];
    let rows = xc.meta.num_elements() / cols.max(1);
    let out = empty_like(&xc, dims.to_vec());
    if software() {
        let (count, dim) = elementwise(&xc, rows);
        unsafe {
            layer_norm_serial::launch_unchecked(
                &xc.client,
                count,
                dim,
                arg(&xc),
                arg(&wc),
                arg(&bc),
                arg(&out),
                rows,
                cols,
                eps as f32,
            );
        }
        return Some(Tensor::from_primitive::<Wgpu>(out));
    }
    let count = CubeCount::Static(groups(rows)?, 1, 1);
    unsafe {
        layer_norm_rows::launch_unchecked(
            &xc.client,
            count,
            CubeDim::new_1d(WG as u32),
            arg(&xc),
            arg(&wc),
            arg(&bc),
            arg(&out),
            cols,
            eps as f32,
        );
    }
    Some(Tensor::from_primitive::<Wgpu>(out))
}

/// Rows at or below this go through the split-`k` kernels (decoding and short inputs); longer
/// inputs through the tiled `gemm`.
const SMALL_M: usize = 8;

/// `act(x·W + b) + residual` with `x` `[.., k]`, `w` `[k, n]`, `residual` (if any) shaped like
/// the output, in one launch. `w` may be a plain `[k, n]` buffer (Conv1D) or the transposed view
/// of an `[n, k]` one (burn's `Linear` loaded from PyTorch's `nn.Linear`, tied output layers).
pub fn linear<const D: usize>(
    x: &Tensor<D>,
    w: &Tensor<2>,
    b: Option<&Tensor<1>>,
    act: Option<Activation>,
    residual: Option<&Tensor<D>>,
) -> Option<Tensor<D>> {
    let (xc, wc) = (buffer(x)?, view(w)?);
    let [k, n] = w.dims();
    let (w_k, w_n) = (wc.meta.strides()[0], wc.meta.strides()[1]);
    let transposed = w_k == 1 && w_n == k; // stored [n, k]
    let plain = w_n == 1 && w_k == n; // stored [k, n]
    if !(transposed || plain) {
        return None;
    }
    let mut dims = x.dims();
    let m = dims[..D - 1].iter().product::<usize>();
    if k == 0 || dims[D - 1] != k {
        return None;
    }
    dims[D - 1] = n;
    let bc = match b {
        Some(b) => Some(buffer(b)?),
        None => None,
    };
    let rc = match residual {
        Some(r) if r.dims() == dims => Some(buffer(r)?),
        Some(_) => return None,
        None => None,
    };
    let (has_bias, has_res) = (bc.is_some(), rc.is_some());
    // Never read where the flags say there is none.
    let bc = bc.unwrap_or_else(|| xc.clone());
    let rc = rc.unwrap_or_else(|| xc.clone());
    let out = empty_like(&xc, dims.to_vec());
    let act = act_code(act);
    if software() {
        if m > SMALL_M || !has_bias {
            return None;
        }
        let (count, dim) = elementwise(&xc, m * n);
        unsafe {
            linear_serial::launch_unchecked(
                &xc.client,
                count,
                dim,
                arg(&xc),
                arg(&wc),
                arg(&bc),
                arg(&rc),
                arg(&out),
                m,
                k,
                n,
                w_k,
                w_n,
                act,
                has_res,
            );
        }
    } else if m <= SMALL_M {
        let cube = if transposed {
            CubeDim::new_2d(32, 8)
        } else {
            CubeDim::new_2d(8, 32)
        };
        unsafe {
            linear_rows::launch_unchecked(
                &xc.client,
                CubeCount::Static(groups(n.div_ceil(8))?, 1, 1),
                cube,
                arg(&xc),
                arg(&wc),
                arg(&bc),
                arg(&rc),
                arg(&out),
                k,
                n,
                m,
                has_bias,
                act,
                has_res,
                transposed,
            );
        }
    } else if wide(m, n) {
        let count = CubeCount::Static(
            groups(n.div_ceil(WIDE_TILE))?,
            groups(m.div_ceil(WIDE_TILE))?,
            1,
        );
        unsafe {
            gemm_wide::launch_unchecked(
                &xc.client,
                count,
                CubeDim::new_1d((16 * WIDE_TILE / WIDE_ROWS) as u32),
                arg(&xc),
                arg(&wc),
                arg(&bc),
                arg(&rc),
                arg(&out),
                m,
                n,
                k,
                w_k,
                w_n,
                has_bias,
                act,
                has_res,
                transposed,
            );
        }
    } else {
        let count = CubeCount::Static(
            groups(n.div_ceil(GEMM_TILE))?,
            groups(m.div_ceil(GEMM_TILE))?,
            1,
        );
        unsafe {
            gemm::launch_unchecked(
                &xc.client,
                count,
                CubeDim::new_1d(WG as u32),
                arg(&xc),
                arg(&wc),
                arg(&bc),
                arg(&rc),
                arg(&out),
                m,
                n,
                k,
                w_k,
                w_n,
                has_bias,
                act,
                has_res,
                transposed,
            );
        }
    }
    Some(Tensor::from_primitive::<Wgpu>(out))
}

/// Whether `gemm_wide` takes an `[m, n]` output: when its 64×64 tiles are at least 128, about
/// one per core of a large GPU (an H200 has 132). Fewer would leave most cores idle, so `gemm`
/// spreads the work over four times as many 32×32 tiles instead (BERT-base over one 154-token
/// sentence: 36 tiles of 64 for its 768-wide projections, 144 for the 3072-wide one).
fn wide(m: usize, n: usize) -> bool {
    m.div_ceil(WIDE_TILE) * n.div_ceil(WIDE_TILE) >= 128
}

/// Whether the attention kernels take `d`-wide heads over `keys` keys.
fn attention_fits(d: usize, keys: usize) -> bool {
    keys <= MAX_KEYS && d > 0 && d <= WG && WG.is_multiple_of(d)
}

/// The four strides of a rank-4 view, 0 on a dimension of size 1 (broadcast).
fn strides4(t: &CubeTensor) -> SequenceArg<usize> {
    let (shape, strides) = (t.meta.shape(), t.meta.strides());
    let mut s = SequenceArg::new();
    for i in 0..4 {
        s.push(if shape[i] == 1 { 0 } else { strides[i] });
    }
    s
}

/// Scaled dot-product attention (`nn::attention`) with the heads merged: `q` `[B, H, Tq, d]`,
/// `k`/`v` `[B, H, Tk, d]` as any views, `mask` `[B|1, H|1, Tq|1, Tk]` (true = masked out); out
/// `[B, Tq, H·d]`. One launch (plus the mask's conversion to 0/1 floats).
pub fn attention(
    q: &Tensor<4>,
    k: &Tensor<4>,
    v: &Tensor<4>,
    mask: Option<&Tensor<4, burn::tensor::Bool>>,
    scale: f64,
) -> Option<Tensor<3>> {
    if software() {
        return None;
    }
    let [b, h, tq, d] = q.dims();
    let [_, _, tk, _] = k.dims();
    if k.dims() != [b, h, tk, d] || v.dims() != [b, h, tk, d] || !attention_fits(d, tk) {
        return None;
    }
    let (qc, kc, vc) = (view(q)?, view(k)?, view(v)?);
    let mc = match mask {
        Some(m) => {
            let [mb, mh, mq, mk] = m.dims();
            let shape_ok = (mb == b || mb == 1) && (mh == h || mh == 1) && (mq == tq || mq == 1);
            if !shape_ok || mk != tk {
                return None;
            }
            Some(view(&m.clone().float())?)
        }
        None => None,
    };
    let out = empty_like(&qc, vec![b, tq, h * d]);
    let count = CubeCount::Static(groups(tq.div_ceil(ATTN_ROWS))?, groups(b * h)?, 1);
    let (m_arg, m_strides) = match &mc {
        Some(m) => (arg(m), strides4(m)),
        None => (arg(&qc), strides4(&qc)), // never read without a mask
    };
    unsafe {
        attn_rows::launch_unchecked(
            &qc.client,
            count,
            CubeDim::new_1d(WG as u32),
            arg(&qc),
            arg(&kc),
            arg(&vc),
            m_arg,
            arg(&out),
            strides4(&qc),
            strides4(&kc),
            strides4(&vc),
            m_strides,
            h,
            tq,
            tk,
            d,
            scale as f32,
            mc.is_some(),
        );
    }
    Some(Tensor::from_primitive::<Wgpu>(out))
}

/// GPT-2 attention for one new token at position `pos` of a batch-1 cache: writes its key and
/// value into `cache_k` / `cache_v` (`[1, H, capacity, d]`, in place: the cache owns them) and
/// returns the attended values `[1, 1, C]`, heads merged. `qkv` is `c_attn`'s output `[1, 1, 3C]`.
/// One launch.
pub fn decode_attention(
    qkv: &Tensor<3>,
    cache_k: &Tensor<4>,
    cache_v: &Tensor<4>,
    pos: usize,
    scale: f64,
) -> Option<Tensor<3>> {
    let [b, t, c3] = qkv.dims();
    let [_, heads, cap, d] = cache_k.dims();
    let fits = software() || attention_fits(d, pos + 1);
    if b != 1 || t != 1 || pos >= cap || c3 != 3 * heads * d || d == 0 || !fits {
        return None;
    }
    let (qc, kc, vc) = (buffer(qkv)?, buffer(cache_k)?, buffer(cache_v)?);
    let out = empty_like(&qc, vec![1, 1, heads * d]);
    if software() {
        decode_attention_serial(&qc, &kc, &vc, &out, heads, d, cap, pos, scale);
        return Some(Tensor::from_primitive::<Wgpu>(out));
    }
    unsafe {
        attn_decode::launch_unchecked(
            &qc.client,
            CubeCount::Static(groups(heads)?, 1, 1),
            CubeDim::new_1d(WG as u32),
            arg(&qc),
            arg(&kc),
            arg(&vc),
            arg(&out),
            d,
            cap,
            pos,
            scale as f32,
        );
    }
    Some(Tensor::from_primitive::<Wgpu>(out))
}

/// `decode_attention` on a software adapter: cache write, scores, softmax·values.
#[allow(clippy::too_many_arguments)]
fn decode_attention_serial(
    qc: &CubeTensor,
    kc: &CubeTensor,
    vc: &CubeTensor,
    out: &CubeTensor,
    heads: usize,
    d: usize,
    cap: usize,
    pos: usize,
    scale: f64,
) {
    let (c, len) = (heads * d, pos + 1);
    let (count, dim) = elementwise(qc, c);
    unsafe {
        kv_write_serial::launch_unchecked(
            &qc.client,
            count,
            dim,
            arg(qc),
            arg(kc),
            arg(vc),
            c,
            d,
            cap,
            pos,
        );
    }
    let scores = empty_like(qc, vec![heads, len]);
    let (count, dim) = elementwise(qc, heads * len);
    unsafe {
        attn_scores_serial::launch_unchecked(
            &qc.client,
            count,
            dim,
            arg(qc),
            arg(kc),
            arg(&scores),
            heads,
            d,
            cap,
            len,
            scale as f32,
        );
    }
    let (count, dim) = elementwise(qc, c);
    unsafe {
        attn_values_serial::launch_unchecked(
            &qc.client,
            count,
            dim,
            arg(&scores),
            arg(vc),
            arg(out),
            heads,
            d,
            cap,
            len,
        );
    }
}

/// Each kernel against burn's ops on the CPU backend, on shapes that are not multiples of the
/// tiles (and views for the strided ones), on a native wgpu adapter: `DUET_GPU_TESTS=1 cargo
/// test -p duet-model --features wgpu kernels` (Mesa's lavapipe is enough).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{attention, merge_heads, Activation};
    use burn::nn::{Dropout, DropoutConfig};
    use burn::tensor::{Bool, Device, TensorData};

    fn gpu() -> Option<Device> {
        if std::env::var_os("DUET_GPU_TESTS").is_none() {
            eprintln!("skipped: set DUET_GPU_TESTS=1 to run the kernels on a wgpu adapter");
            return None;
        }
        // One wgpu service per process: the tests share the device.
        static GPU: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
        Some(
            GPU.get_or_init(|| Device::wgpu_options().init().expect("a wgpu adapter"))
                .clone(),
        )
    }

    /// Deterministic values in [-1, 1).
    fn data(shape: &[usize], seed: u64) -> TensorData {
        let n = shape.iter().product::<usize>();
        let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        TensorData::new(v, shape.to_vec())
    }

    fn pair<const D: usize>(shape: [usize; D], seed: u64, gpu: &Device) -> (Tensor<D>, Tensor<D>) {
        let d = data(&shape, seed);
        (
            Tensor::from_data(d.clone(), &crate::device::cpu()),
            Tensor::from_data(d, gpu),
        )
    }

    fn assert_close<const D: usize>(got: Tensor<D>, want: Tensor<D>, what: &str) {
        assert_eq!(got.dims(), want.dims(), "{what}: shape");
        let got = got.into_data().try_into_vec::<f32>().unwrap();
        let want = want.into_data().try_into_vec::<f32>().unwrap();
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
            .fold(0.0f32, f32::max);
        // f32 sums of up to 768 products in another order: ~1e-5 apart.
        assert!(worst < 5e-5, "{what}: worst relative difference {worst}");
    }

    /// Runs `test` with the workgroup kernels, then with the serial ones (`software` true). The
    /// switch is process-wide, so the kernel tests take turns.
    fn each_family(test: impl Fn(&Device, bool)) {
        let Some(g) = gpu() else { return };
        static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        for software in [false, true] {
            set_software_adapter(software);
            test(&g, software);
        }
        set_software_adapter(false);
    }

    /// The kernel's output; `applies` says whether one must have run (on a software adapter some
    /// cases are left to burn's ops).
    fn ran<const D: usize>(got: Option<Tensor<D>>, applies: bool, what: &str) -> Option<Tensor<D>> {
        assert_eq!(got.is_some(), applies, "{what}: whether a kernel ran");
        got
    }

    #[test]
    fn layer_norm_matches_burn() {
        each_family(|g, _| {
            for (i, shape) in [[1, 1, 768], [3, 5, 100], [2, 7, 300]]
                .into_iter()
                .enumerate()
            {
                let (xc, xg) = pair(shape, i as u64, g);
                let (wc, wg) = pair([shape[2]], 10 + i as u64, g);
                let (bc, bg) = pair([shape[2]], 20 + i as u64, g);
                let got = layer_norm(&xg, &wg, &bg, 1e-5).expect("a kernel runs");
                let want = burn::tensor::module::layer_norm(xc, wc, Some(bc), 1e-5);
                assert_close(got, want, &format!("layer norm {shape:?}"));
            }
        });
    }

    #[test]
    fn projections_match_burn() {
        each_family(|g, software| {
            let acts = [
                None,
                Some(Activation::GeluTanh),
                Some(Activation::Gelu),
                Some(Activation::Relu),
            ];
            // Rows on both sides of SMALL_M; k and n off the tile sizes (and n off the 4-column
            // quads of `gemm_wide`); both `gemm` and `gemm_wide`.
            let shapes = [
                (1, 768, 2304),
                (3, 100, 7),
                (8, 33, 65),
                (9, 100, 70),
                (130, 257, 129),
                (1030, 40, 1000),
                (700, 37, 1203),
            ];
            let wide: Vec<bool> = shapes.iter().map(|s| wide(s.0, s.2)).collect();
            assert!(
                wide.contains(&true) && wide[..5].contains(&false),
                "{wide:?}"
            );
            for (i, (m, k, n)) in shapes.into_iter().enumerate() {
                let act = acts[i % acts.len()];
                let seed = 100 + 10 * i as u64;
                let what = format!("linear m={m} k={k} n={n} {act:?} software={software}");
                let applies = !software || m <= SMALL_M;
                let (xc, xg) = pair([1, m, k], seed, g);
                let (bc, bg) = pair([n], seed + 2, g);
                let (rc, rg) = pair([1, m, n], seed + 3, g);
                // Conv1D's `[k, n]` buffer, and nn.Linear's `[n, k]` seen transposed.
                let (wc, wg) = pair([k, n], seed + 1, g);
                let (wtc, wtg) = pair([n, k], seed + 4, g);
                let weights = [
                    ("[k, n]", wc, wg),
                    ("[n, k]ᵀ", wtc.transpose(), wtg.transpose()),
                ];
                for (layout, wc, wg) in weights {
                    let what = format!("{what} w {layout}");
                    let y = xc.clone().matmul(wc.unsqueeze()) + bc.clone().unsqueeze();
                    let want = act.map_or(y.clone(), |a| a.forward(y));
                    let got = linear(&xg, &wg, Some(&bg), act, None);
                    if let Some(got) = ran(got, applies, &what) {
                        assert_close(got, want.clone(), &what);
                    }
                    // With the residual stream joining in the same launch.
                    let got = linear(&xg, &wg, Some(&bg), act, Some(&rg));
                    if let Some(got) = ran(got, applies, &what) {
                        assert_close(got, want + rc.clone(), &format!("{what}, + residual"));
                    }
                }
            }
        });
    }

    #[test]
    fn tied_output_layer_matches_burn() {
        each_family(|g, software| {
            for (m, k, n) in [(1, 768, 1000), (5, 33, 50)] {
                let what = format!("linear_t m={m} k={k} n={n} software={software}");
                let (xc, xg) = pair([1, m, k], 7, g);
                let (wc, wg) = pair([n, k], 8, g);
                let got = linear(&xg, &wg.transpose(), None, None, None);
                if let Some(got) = ran(got, !software, &what) {
                    let want = burn::tensor::module::linear(xc, wc.transpose(), None);
                    assert_close(got, want, &what);
                }
            }
        });
    }

    #[test]
    fn attention_on_head_split_views_matches_burn() {
        each_family(|g, software| {
            let (b, t, h, d) = (2, 70, 3, 8);
            let split = |x: Tensor<3>| x.reshape([b, t, h, d]).swap_dims(1, 2);
            let (qc, qg) = pair([b, t, h * d], 1, g);
            let (kc, kg) = pair([b, t, h * d], 2, g);
            let (vc, vg) = pair([b, t, h * d], 3, g);
            // The fused attention, heads merged, with a padding mask broadcast over heads and
            // queries (the second sequence's last five keys are padding), against
            // `nn::attention`.
            let dropout: Dropout = DropoutConfig::new(0.0).init();
            let cpu = crate::device::cpu();
            let padding = |dev: &Device| {
                let m: Vec<bool> = (0..b * t).map(|i| i % t >= t - 5 * (i / t)).collect();
                Tensor::<2, Bool>::from_data(TensorData::new(m, [b, t]), dev).reshape([b, 1, 1, t])
            };
            let want = |mask: Option<Tensor<4, Bool>>| {
                merge_heads(attention(
                    split(qc.clone()),
                    split(kc.clone()),
                    split(vc.clone()),
                    mask,
                    0.35,
                    &dropout,
                ))
            };
            // A causal mask `[1, 1, Tq, Tk]` (broadcast over batch and heads).
            let causal = |dev: &Device| {
                let m: Vec<bool> = (0..t * t).map(|i| i % t > i / t).collect();
                Tensor::<2, Bool>::from_data(TensorData::new(m, [t, t]), dev).reshape([1, 1, t, t])
            };
            let (q, k, v) = (split(qg), split(kg), split(vg));
            let cases = [
                ("padding mask", Some(padding(g)), Some(padding(&cpu))),
                ("causal mask", Some(causal(g)), Some(causal(&cpu))),
                ("no mask", None, None),
            ];
            for (what, mask_g, mask_c) in cases {
                let got = super::attention(&q, &k, &v, mask_g.as_ref(), 0.35);
                if let Some(got) = ran(got, !software, what) {
                    assert_close(got, want(mask_c), &format!("attention, {what}"));
                }
            }
        });
    }

    #[test]
    fn decode_attention_matches_burn() {
        each_family(|g, software| {
            let (h, cap, d, pos) = (12, 300, 64, 260);
            let (qkvc, qkvg) = pair([1, 1, 3 * h * d], 4, g);
            let (kc, kg) = pair([1, h, cap, d], 5, g);
            let (vc, vg) = pair([1, h, cap, d], 6, g);
            let got = decode_attention(&qkvg, &kg, &vg, pos, 0.125).expect("a kernel runs");
            // Reference: write the new key and value at `pos`, attend over positions 0..=pos.
            let c = h * d;
            let heads = |x: Tensor<3>| x.reshape([1, 1, h, d]).swap_dims(1, 2);
            let q = heads(qkvc.clone().slice([0..1, 0..1, 0..c]));
            let k = heads(qkvc.clone().slice([0..1, 0..1, c..2 * c]));
            let v = heads(qkvc.slice([0..1, 0..1, 2 * c..3 * c]));
            let upto = [0..1, 0..h, 0..pos + 1, 0..d];
            let at = [0..1, 0..h, pos..pos + 1, 0..d];
            let kc = kc.slice_assign(at.clone(), k).slice(upto.clone());
            let vc = vc.slice_assign(at, v).slice(upto.clone());
            let dropout: Dropout = DropoutConfig::new(0.0).init();
            let want = merge_heads(attention(q, kc.clone(), vc, None, 0.125, &dropout));
            assert_close(got, want, &format!("decode attention, software={software}"));
            // The cache now holds the new key at `pos`.
            assert_close(kg.slice(upto), kc, "cache write");
        });
    }
}
