//! The kernels for a software adapter (Chromium's SwiftShader, Mesa's lavapipe), where every
//! unit is a lane of a CPU core and a workgroup barrier is a context switch: one unit per row or
//! per output, each summing serially, no shared memory. On SwiftShader these decode the default
//! GPT 6.5× faster than `workgroup.rs`'s kernels (16.9 against 2.6 tokens/s, 64 new tokens),
//! which on a real GPU are the fast ones. Larger matrices and encoder attention have no serial kernel: burn's ops
//! run them there.

use super::activate;
use burn_cubecl::cubecl;
use cubecl::prelude::*;

/// One row of `[rows, cols]` per unit: mean, biased variance, normalise, scale and shift.
#[cube(launch_unchecked)]
pub(super) fn layer_norm_serial(
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

/// `act(x·W + b) (+ res)` for a few rows: one output element per unit, the `k` products summed
/// in order. `w` is `[k, n]` read through its strides `w_k`, `w_n` (a transposed view too).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub(super) fn linear_serial(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    res: &[f32],
    out: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    w_k: usize,
    w_n: usize,
    #[comptime] act: u32,
    #[comptime] has_res: bool,
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
        acc += x[xb + i] * w[i * w_k + col * w_n];
    }
    let mut y = activate(acc + b[col], act);
    if has_res {
        y += res[pos];
    }
    out[pos] = y;
}

/// Decoding one token (batch 1): copy its key and value out of the fused `[3C]` projection into
/// the cache `[1, H, capacity, d]` at position `pos`, in place.
#[cube(launch_unchecked)]
pub(super) fn kv_write_serial(
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
pub(super) fn attn_scores_serial(
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
pub(super) fn attn_values_serial(
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
