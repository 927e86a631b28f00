//! Hand-written WebGPU kernels for inference: fewer, larger dispatches on the hot path.
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
//! by `tests/gpu_kernels.rs` against the CPU backend).

use burn::backend::Wgpu;
use burn::tensor::{DType, Shape, Tensor};
// The `#[cube]` macros name `cubecl::…`: burn's own copy, so the versions always agree.
use burn_cubecl::cubecl;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::calculate_cube_count_elemwise;
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
fn activate(x: f32, #[comptime] act: u32) -> f32 {
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

/// One row of `[rows, cols]` per unit: mean, biased variance, normalise, scale and shift.
#[cube(launch_unchecked)]
fn layer_norm_rows(
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
    rows: usize,
    cols: usize,
    eps: f32,
) {
    let row = ABSOLUTE_POS;
    if row >= rows {
        terminate!();
    }
    let base = row * cols;
    let n = f32::cast_from(cols);
    let mut sum = 0.0f32;
    for i in 0..cols {
        sum += input[base + i];
    }
    let mean = sum / n;
    let mut sq = 0.0f32;
    for i in 0..cols {
        let d = input[base + i] - mean;
        sq += d * d;
    }
    let denom = f32::sqrt(sq / n + eps);
    for i in 0..cols {
        output[base + i] = (input[base + i] - mean) / denom * weight[i] + bias[i];
    }
}

/// `act(x·W + b)` for a few rows (decoding): one output element per unit, the `k` products
/// summed in order. `w` is `[k, n]` (burn's and Conv1D's layout), so neighbouring units read
/// neighbouring weights.
#[cube(launch_unchecked)]
fn linear_rows(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    out: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    #[comptime] act: u32,
) {
    let pos = ABSOLUTE_POS;
    if pos >= m * n {
        terminate!();
    }
    let row = pos / n;
    let col = pos % n;
    let xb = row * k;
    let mut acc = 0.0f32;
    for i in 0..k {
        acc += x[xb + i] * w[i * n + col];
    }
    out[pos] = activate(acc + b[col], act);
}

/// In place on a matmul's output `[m, n]`: `act(y + b)` (the bias and activation after a large
/// matmul, one launch instead of one for the bias and up to eight for the activation).
#[cube(launch_unchecked)]
fn bias_act(y: &mut [f32], b: &[f32], len: usize, n: usize, #[comptime] act: u32) {
    let pos = ABSOLUTE_POS;
    if pos >= len {
        terminate!();
    }
    y[pos] = activate(y[pos] + b[pos % n], act);
}

/// Decoding one token (batch 1): copy its key and value out of the fused `[3C]` projection into
/// the cache `[1, H, capacity, d]` at position `pos`, in place.
#[cube(launch_unchecked)]
fn kv_write(
    qkv: &[f32],
    cache_k: &mut [f32],
    cache_v: &mut [f32],
    c: usize,
    d: usize,
    cap: usize,
    pos: usize,
) {
    let i = ABSOLUTE_POS;
    if i >= c {
        terminate!();
    }
    let head = i / d;
    let at = (head * cap + pos) * d + i % d;
    cache_k[at] = qkv[c + i];
    cache_v[at] = qkv[2 * c + i];
}

/// Decoding: `scores[h, j] = scale · q_h · k_{h,j}` for the `len` cached positions.
#[cube(launch_unchecked)]
fn attn_scores(
    qkv: &[f32],
    cache_k: &[f32],
    scores: &mut [f32],
    heads: usize,
    d: usize,
    cap: usize,
    len: usize,
    scale: f32,
) {
    let i = ABSOLUTE_POS;
    if i >= heads * len {
        terminate!();
    }
    let head = i / len;
    let j = i % len;
    let q = head * d;
    let kb = (head * cap + j) * d;
    let mut acc = 0.0f32;
    for t in 0..d {
        acc += qkv[q + t] * cache_k[kb + t];
    }
    scores[i] = acc * scale;
}

/// Decoding: softmax over each head's scores, then the weighted sum of the cached values, one
/// output element (head, t) per unit, written in the merged `[C]` layout the projection reads.
#[cube(launch_unchecked)]
fn attn_softmax_values(
    scores: &[f32],
    cache_v: &[f32],
    out: &mut [f32],
    heads: usize,
    d: usize,
    cap: usize,
    len: usize,
) {
    let i = ABSOLUTE_POS;
    if i >= heads * d {
        terminate!();
    }
    let head = i / d;
    let t = i % d;
    let sb = head * len;
    let mut max = scores[sb];
    for j in 1..len {
        max = f32::max(max, scores[sb + j]);
    }
    let mut sum = 0.0f32;
    let mut acc = 0.0f32;
    for j in 0..len {
        let e = f32::exp(scores[sb + j] - max);
        sum += e;
        acc += e * cache_v[(head * cap + j) * d + t];
    }
    out[i] = acc / sum;
}

/// The tensor as a plain f32 WebGPU buffer (its own allocation, row-major), or `None`.
fn buffer<const D: usize>(t: &Tensor<D>) -> Option<CubeTensor> {
    if t.device().is_autodiff() {
        return None;
    }
    let c = t.clone().try_into_primitive::<Wgpu>().ok()?;
    let plain = c.dtype == DType::F32
        && c.qparams.is_none()
        && c.is_contiguous()
        && c.handle.offset_start.unwrap_or(0) == 0;
    plain.then_some(c)
}

fn arg(t: &CubeTensor) -> BufferArg {
    // SAFETY: `buffer` checked that the handle is a whole f32 allocation of this many elements.
    unsafe { BufferArg::from_raw_parts(t.handle.clone(), t.meta.num_elements()) }
}

fn empty_like(t: &CubeTensor, dims: Vec<usize>) -> CubeTensor {
    empty_device_dtype(
        t.client.clone(),
        t.device.clone(),
        Shape::from(dims),
        DType::F32,
    )
}

fn launch_dims(t: &CubeTensor, units: usize) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new(&t.client, units);
    (calculate_cube_count_elemwise(&t.client, units, dim), dim)
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
    let (count, dim) = launch_dims(&xc, rows);
    unsafe {
        layer_norm_rows::launch_unchecked(
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
    Some(Tensor::from_primitive::<Wgpu>(out))
}

/// Rows at or below this go through `linear_rows` (one unit per output, no tiling): decoding and
/// short inputs. Longer inputs use burn's tiled matmul and then `bias_act`.
const SMALL_M: usize = 8;

/// `act(x·W + b)` with `x` `[.., k]`, `w` `[k, n]`: one or two launches instead of two to ten.
pub fn linear<const D: usize>(
    x: &Tensor<D>,
    w: &Tensor<2>,
    b: &Tensor<1>,
    act: Option<Activation>,
) -> Option<Tensor<D>> {
    let (wc, bc) = (buffer(w)?, buffer(b)?);
    let [k, n] = w.dims();
    let mut dims = x.dims();
    let m = dims[..D - 1].iter().product::<usize>();
    dims[D - 1] = n;
    if m <= SMALL_M {
        let xc = buffer(x)?;
        let out = empty_like(&xc, dims.to_vec());
        let (count, dim) = launch_dims(&xc, m * n);
        unsafe {
            linear_rows::launch_unchecked(
                &xc.client,
                count,
                dim,
                arg(&xc),
                arg(&wc),
                arg(&bc),
                arg(&out),
                m,
                k,
                n,
                act_code(act),
            );
        }
        return Some(Tensor::from_primitive::<Wgpu>(out));
    }
    let y = x.clone().matmul(w.clone().unsqueeze());
    let Some(yc) = buffer(&y) else {
        // Finish with burn ops rather than return `None`: the caller would redo the matmul.
        let y = y + b.clone().unsqueeze();
        return Some(match act {
            Some(a) => a.forward(y),
            None => y,
        });
    };
    let len = yc.meta.num_elements();
    let (count, dim) = launch_dims(&yc, len);
    unsafe {
        bias_act::launch_unchecked(
            &yc.client,
            count,
            dim,
            arg(&yc),
            arg(&bc),
            len,
            n,
            act_code(act),
        );
    }
    Some(y)
}

/// GPT-2 attention for one new token at position `pos` of a batch-1 cache: writes its key and
/// value into `cache_k` / `cache_v` (`[1, H, capacity, d]`, in place: the cache owns them) and
/// returns the attended values `[1, 1, C]`, heads merged. `qkv` is `c_attn`'s output `[1, 1, 3C]`.
pub fn decode_attention(
    qkv: &Tensor<3>,
    cache_k: &Tensor<4>,
    cache_v: &Tensor<4>,
    pos: usize,
    scale: f64,
) -> Option<Tensor<3>> {
    let [b, t, c3] = qkv.dims();
    let [_, heads, cap, d] = cache_k.dims();
    if b != 1 || t != 1 || pos >= cap || c3 != 3 * heads * d {
        return None;
    }
    let (qc, kc, vc) = (buffer(qkv)?, buffer(cache_k)?, buffer(cache_v)?);
    let c = heads * d;
    let len = pos + 1;
    let (count, dim) = launch_dims(&qc, c);
    unsafe {
        kv_write::launch_unchecked(
            &qc.client,
            count,
            dim,
            arg(&qc),
            arg(&kc),
            arg(&vc),
            c,
            d,
            cap,
            pos,
        );
    }
    let scores = empty_like(&qc, vec![heads, len]);
    let (count, dim) = launch_dims(&qc, heads * len);
    unsafe {
        attn_scores::launch_unchecked(
            &qc.client,
            count,
            dim,
            arg(&qc),
            arg(&kc),
            arg(&scores),
            heads,
            d,
            cap,
            len,
            scale as f32,
        );
    }
    let out = empty_like(&qc, vec![1, 1, c]);
    let (count, dim) = launch_dims(&qc, c);
    unsafe {
        attn_softmax_values::launch_unchecked(
            &qc.client,
            count,
            dim,
            arg(&scores),
            arg(&vc),
            arg(&out),
            heads,
            d,
            cap,
            len,
        );
    }
    Some(Tensor::from_primitive::<Wgpu>(out))
}
