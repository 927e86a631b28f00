//! The kernels for a real GPU: each spreads one row's or one output's work over a workgroup
//! of 256 units that meet in shared memory, so that even one row (decoding) keeps thousands of
//! units busy. (On a software adapter every unit is a CPU lane and the barriers are costly:
//! `serial.rs` holds the kernels for those.)

// Cube code: cubecl's frontend has no `div_ceil`, and a comptime flag is tested on its own
// (`if has_mask { if … }`) so that the branch vanishes from the kernel when it is off.
#![allow(clippy::manual_div_ceil, clippy::collapsible_if)]

use super::store_projection;
use burn_cubecl::cubecl;
use cubecl::prelude::*;

/// Threads per workgroup in the cooperative kernels below: WebGPU's guaranteed maximum.
pub(super) const WG: usize = 256;

/// After each unit stored its value in `red[tid]`: halves the live range until `red[0]` holds
/// the sum (`op` 0) or the maximum (`op` 1) of all of them. Every unit of the workgroup must call
/// it (it synchronises); read `red[0]`, then `sync_cube()` before `red` is written again.
#[cube]
fn workgroup_tree(red: &mut Shared<[f32]>, tid: usize, #[comptime] op: u32) {
    sync_cube();
    // A runtime bound, and the shared slot read before it is written: the compile-time-bound
    // loop with `red[tid] += …` failed cubecl's SPIR-V verification ("Expected operand type
    // cube.ptr, but found cube.index").
    let mut stride = (CUBE_DIM / 2) as usize;
    while stride > 0 {
        if tid < stride {
            let other = red[tid + stride];
            let cur = red[tid];
            if op == 0 {
                red[tid] = cur + other;
            } else {
                red[tid] = f32::max(cur, other);
            }
        }
        sync_cube();
        stride /= 2;
    }
}

/// Layer norm, one workgroup per row: the units stride over the row, the sums meet in shared
/// memory (a row of 768 is three short loops per unit instead of one unit's 2304 serial reads).
#[cube(launch_unchecked)]
pub(super) fn layer_norm_rows(
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
    cols: usize,
    eps: f32,
) {
    let tid = UNIT_POS as usize;
    let base = CUBE_POS * cols;
    let mut red = Shared::new_slice(WG);
    let n = f32::cast_from(cols);
    let iters = (cols + WG - 1) / WG;
    let mut sum = 0.0f32;
    for it in 0..iters {
        let i = it * WG + tid;
        if i < cols {
            sum += input[base + i];
        }
    }
    red[tid] = sum;
    workgroup_tree(&mut red, tid, 0u32);
    let mean = red[0] / n;
    sync_cube();
    let mut sq = 0.0f32;
    for it in 0..iters {
        let i = it * WG + tid;
        if i < cols {
            let d = input[base + i] - mean;
            sq += d * d;
        }
    }
    red[tid] = sq;
    workgroup_tree(&mut red, tid, 0u32);
    let denom = f32::sqrt(red[0] / n + eps);
    for it in 0..iters {
        let i = it * WG + tid;
        if i < cols {
            output[base + i] = (input[base + i] - mean) / denom * weight[i] + bias[i];
        }
    }
}

/// `act(x·W (+ b)) (+ res)` for a few rows (decoding, `rows` ≤ 8). A workgroup owns 8
/// neighbouring outputs and splits `k` over 32 slices of units, then adds the 32 partial sums
/// in shared memory. `w` is read as stored, so that neighbouring units read neighbouring
/// weights: `[k, n]` (Conv1D; units along `n`, cube `(8, 32)`) or, `transposed`, `[n, k]`
/// (`nn.Linear`, which burn holds as a transposed view, and tied output layers such as GPT-2's
/// `lm_head` = `wte`; units along `k`, cube `(32, 8)`). One unit per output summing all of `k`
/// serially left a large GPU nearly idle (768 units waiting on 3072 dependent reads each).
#[cube(launch_unchecked)]
pub(super) fn linear_rows(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    res: &[f32],
    out: &mut [f32],
    k: usize,
    n: usize,
    #[comptime] rows: usize,
    #[comptime] has_bias: bool,
    #[comptime] act: u32,
    #[comptime] has_res: bool,
    #[comptime] transposed: bool,
) {
    let mut o = UNIT_POS_X as usize; // output within the tile, 0..8
    let mut s = UNIT_POS_Y as usize; // slice of k, 0..32
    if transposed {
        o = UNIT_POS_Y as usize;
        s = UNIT_POS_X as usize;
    }
    let col = CUBE_POS * 8 + o;
    let mut acc = Array::<f32>::new(rows);
    #[unroll]
    for r in 0..rows {
        acc[r] = 0.0f32;
    }
    if col < n {
        let iters = (k + 31) / 32;
        for it in 0..iters {
            let i = it * 32 + s;
            if i < k {
                let mut wv = w[i * n + col];
                if transposed {
                    wv = w[col * k + i];
                }
                #[unroll]
                for r in 0..rows {
                    acc[r] += x[r * k + i] * wv;
                }
            }
        }
    }
    let mut red = Shared::new_slice(rows * WG); // [rows][32 slices][8 outputs]
    #[unroll]
    for r in 0..rows {
        red[(r * 32 + s) * 8 + o] = acc[r];
    }
    sync_cube();
    // Unit (o, s < rows) finishes row s of output o.
    if s < rows && col < n {
        let mut y = 0.0f32;
        for j in 0..32 {
            y += red[(s * 32 + j) * 8 + o];
        }
        store_projection(out, b, res, y, s, col, n, has_bias, act, has_res);
    }
}

/// The output tile of `gemm`.
pub(super) const GEMM_TILE: usize = 32;

/// `act(x·W + b) (+ res)` for more rows than `linear_rows` takes, where there are too few
/// outputs for `gemm_wide`'s 64×64 tiles to fill a large GPU: out `[m, n]` from `x` `[m, k]`
/// and `w` read through its strides `w_k`, `w_n` (`[k, n]`, or `[n, k]` seen transposed:
/// `w_kmajor`). Classic shared-memory tiling: a 32×32 output tile per workgroup, 16-wide steps
/// along `k`, 2×2 outputs per unit (BERT's 154 rows × 768 columns are 120 such tiles, 36 of 64).
#[cube(launch_unchecked)]
pub(super) fn gemm(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    res: &[f32],
    out: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    w_k: usize,
    w_n: usize,
    #[comptime] has_bias: bool,
    #[comptime] act: u32,
    #[comptime] has_res: bool,
    #[comptime] w_kmajor: bool,
) {
    let tile = comptime![GEMM_TILE];
    let r = comptime![GEMM_TILE / 16];
    let tid = UNIT_POS as usize;
    let tx = tid % 16;
    let ty = tid / 16;
    let col0 = CUBE_POS_X as usize * tile;
    let row0 = CUBE_POS_Y as usize * tile;
    let mut sa = Shared::new_slice(comptime![16 * tile]); // [16 k][tile rows]
    let mut sb = Shared::new_slice(comptime![16 * tile]); // [16 k][tile cols]
    let mut acc = Array::<f32>::new(comptime![r * r]);
    #[unroll]
    for i in 0..comptime![r * r] {
        acc[i] = 0.0f32;
    }
    let mut av = Array::<f32>::new(r);
    let steps = (k + 15) / 16;
    for step in 0..steps {
        let k0 = step * 16;
        #[unroll]
        for l in 0..r {
            let e = tid + l * WG;
            let ai = e / 16;
            let ak = e % 16;
            let mut va = 0.0f32;
            if row0 + ai < m && k0 + ak < k {
                va = x[(row0 + ai) * k + k0 + ak];
            }
            sa[ak * tile + ai] = va;
            // Neighbouring units read along the weight's contiguous dimension: `k` for a weight
            // stored `[n, k]` (a transposed view), `n` otherwise.
            let mut bk = e / tile;
            let mut bj = e % tile;
            if w_kmajor {
                bk = e % 16;
                bj = e / 16;
            }
            let mut vb = 0.0f32;
            if k0 + bk < k && col0 + bj < n {
                vb = w[(k0 + bk) * w_k + (col0 + bj) * w_n];
            }
            sb[bk * tile + bj] = vb;
        }
        sync_cube();
        #[unroll]
        for kk in 0..16usize {
            #[unroll]
            for i in 0..r {
                av[i] = sa[kk * tile + ty + 16 * i];
            }
            #[unroll]
            for j in 0..r {
                let bv = sb[kk * tile + tx + 16 * j];
                #[unroll]
                for i in 0..r {
                    acc[i * r + j] += av[i] * bv;
                }
            }
        }
        sync_cube();
    }
    #[unroll]
    for i in 0..r {
        let row = row0 + ty + 16 * i;
        #[unroll]
        for j in 0..r {
            let col = col0 + tx + 16 * j;
            if row < m && col < n {
                let y = acc[i * r + j];
                store_projection(out, bias, res, y, row, col, n, has_bias, act, has_res);
            }
        }
    }
}

/// After each unit wrote the scores of its positions `j ≡ tid (mod WG)` into `sc` and kept their
/// maximum in `local_max`: turns `sc[..len]` into `exp(s - max)` and returns their sum (the
/// softmax's denominator), every unit's writes visible to all. All units must call it.
#[cube]
fn softmax_shared(
    sc: &mut Shared<[f32]>,
    off: usize,
    red: &mut Shared<[f32]>,
    local_max: f32,
    len: usize,
    tid: usize,
) -> f32 {
    red[tid] = local_max;
    workgroup_tree(red, tid, 1u32);
    let max = red[0];
    sync_cube();
    let iters = (len + WG - 1) / WG;
    let mut sum = 0.0f32;
    for it in 0..iters {
        let j = it * WG + tid;
        if j < len {
            let e = f32::exp(sc[off + j] - max);
            sc[off + j] = e;
            sum += e;
        }
    }
    red[tid] = sum;
    workgroup_tree(red, tid, 0u32);
    let total = red[0];
    sync_cube();
    total
}

/// The attention kernels' values step: unit `tid` holds the partial sum of key slice `tid / d`
/// for dimension `tid % d`; the slices meet in shared memory, and units `tid < d` get the total
/// of dimension `tid` (the others 0).
#[cube]
fn sum_slices(red: &mut Shared<[f32]>, acc: f32, d: usize, tid: usize) -> f32 {
    red[tid] = acc;
    sync_cube();
    let mut s = 0.0f32;
    if tid < d {
        for u in 0..WG / d {
            s += red[u * d + tid];
        }
    }
    s
}

/// The longest key sequence the attention kernels hold scores for in shared memory (GPT-2's
/// `n_positions`, BERT's `max_position_embeddings`).
pub(super) const MAX_KEYS: usize = 1024;

/// Query rows per workgroup in `attn_rows`.
pub(super) const ATTN_ROWS: usize = 4;

/// Encoder / prefill attention, one workgroup per `ATTN_ROWS` query rows `(b, h, i..)`: scores
/// `scale · q·k_j` for the `tk` keys into shared memory (masked ones set to `f32::MIN`, as HF's
/// `masked_fill`), softmax over them through two tree reductions per row, then `d` outputs per
/// row from `WG / d` slices of keys, written straight into the merged `[B, Tq, H·d]` layout.
/// `q`, `k`, `v` and the 0/1 mask (`[B|1, H|1, Tq|1, Tk]`, 1 = masked; stride 0 on a broadcast
/// dimension) are read through their strides, so head splits, cache slices and broadcasts need
/// no copy. One launch instead of eight burn ops (two matmuls, the fill, four for the softmax,
/// the merge's copy).
///
/// Why several rows per workgroup: each key and value read from memory then serves every row of
/// the block, and each unit has that many independent sums in flight. With one row per
/// workgroup, BERT-base at batch 8 spent a third of its time here on an H200.
#[cube(launch_unchecked)]
pub(super) fn attn_rows(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: &[f32],
    out: &mut [f32],
    qs: Sequence<usize>,
    ks: Sequence<usize>,
    vs: Sequence<usize>,
    ms: Sequence<usize>,
    heads: usize,
    tq: usize,
    tk: usize,
    d: usize,
    scale: f32,
    #[comptime] has_mask: bool,
) {
    let tid = UNIT_POS as usize;
    let i0 = CUBE_POS_X as usize * ATTN_ROWS;
    let bh = CUBE_POS_Y as usize;
    let b = bh / heads;
    let h = bh % heads;
    let kb = b * ks[0] + h * ks[1];
    let vb = b * vs[0] + h * vs[1];
    // The block's rows past `tq` repeat the last row: computed like the others, never written.
    let mut rows = Array::<usize>::new(ATTN_ROWS);
    #[unroll]
    for r in 0..ATTN_ROWS {
        let mut i = i0 + r;
        if i >= tq {
            i = tq - 1;
        }
        rows[r] = i;
    }
    let mut sq = Shared::new_slice(comptime![ATTN_ROWS * WG]); // [row][d], d ≤ WG
    let mut sc = Shared::new_slice(comptime![ATTN_ROWS * MAX_KEYS]); // [row][key]
    let mut red = Shared::new_slice(WG);
    if tid < d {
        #[unroll]
        for r in 0..ATTN_ROWS {
            sq[r * d + tid] = q[b * qs[0] + h * qs[1] + rows[r] * qs[2] + tid * qs[3]];
        }
    }
    sync_cube();
    let mut local_max = Array::<f32>::new(ATTN_ROWS);
    let mut dot = Array::<f32>::new(ATTN_ROWS);
    #[unroll]
    for r in 0..ATTN_ROWS {
        local_max[r] = f32::new(-3.402_823_5e38);
    }
    let iters = (tk + WG - 1) / WG;
    for it in 0..iters {
        let j = it * WG + tid;
        if j < tk {
            #[unroll]
            for r in 0..ATTN_ROWS {
                dot[r] = 0.0f32;
            }
            for t in 0..d {
                let kj = k[kb + j * ks[2] + t * ks[3]];
                #[unroll]
                for r in 0..ATTN_ROWS {
                    dot[r] += sq[r * d + t] * kj;
                }
            }
            #[unroll]
            for r in 0..ATTN_ROWS {
                let mut s = dot[r] * scale;
                if has_mask {
                    if mask[b * ms[0] + h * ms[1] + rows[r] * ms[2] + j * ms[3]] != 0.0f32 {
                        s = f32::new(-3.402_823_5e38);
                    }
                }
                sc[r * MAX_KEYS + j] = s;
                local_max[r] = f32::max(local_max[r], s);
            }
        }
    }
    let mut total = Array::<f32>::new(ATTN_ROWS);
    #[unroll]
    for r in 0..ATTN_ROWS {
        total[r] = softmax_shared(&mut sc, r * MAX_KEYS, &mut red, local_max[r], tk, tid);
    }
    let slices = WG / d;
    let t = tid % d;
    let slice = tid / d;
    let mut acc = Array::<f32>::new(ATTN_ROWS);
    #[unroll]
    for r in 0..ATTN_ROWS {
        acc[r] = 0.0f32;
    }
    let steps = (tk + slices - 1) / slices;
    for it in 0..steps {
        let j = it * slices + slice;
        if j < tk {
            let vj = v[vb + j * vs[2] + t * vs[3]];
            #[unroll]
            for r in 0..ATTN_ROWS {
                acc[r] += sc[r * MAX_KEYS + j] * vj;
            }
        }
    }
    #[unroll]
    for r in 0..ATTN_ROWS {
        let s = sum_slices(&mut red, acc[r], d, tid);
        if tid < d && i0 + r < tq {
            out[((b * tq + i0 + r) * heads + h) * d + tid] = s / total[r];
        }
        sync_cube();
    }
}

/// Decoding one token (batch 1), one workgroup per head: writes the head's new key and value
/// into the cache `[1, H, capacity, d]` at `pos` (in place), then attends over positions
/// `0..=pos` as `attn_rows` does, taking position `pos` from `qkv` itself (another unit's write
/// to the cache is not visible inside the launch). Out: `[C]`, heads merged.
#[cube(launch_unchecked)]
pub(super) fn attn_decode(
    qkv: &[f32],
    cache_k: &mut [f32],
    cache_v: &mut [f32],
    out: &mut [f32],
    d: usize,
    cap: usize,
    pos: usize,
    scale: f32,
) {
    let tid = UNIT_POS as usize;
    let head = CUBE_POS;
    let c = CUBE_COUNT * d;
    let q = head * d;
    if tid < d {
        cache_k[(head * cap + pos) * d + tid] = qkv[c + q + tid];
        cache_v[(head * cap + pos) * d + tid] = qkv[2 * c + q + tid];
    }
    let len = pos + 1;
    let mut sc = Shared::new_slice(MAX_KEYS);
    let mut red = Shared::new_slice(WG);
    let iters = (len + WG - 1) / WG;
    let mut local_max = f32::new(-3.402_823_5e38);
    for it in 0..iters {
        let j = it * WG + tid;
        if j < len {
            let mut dot = 0.0f32;
            if j == pos {
                for t in 0..d {
                    dot += qkv[q + t] * qkv[c + q + t];
                }
            } else {
                let kb = (head * cap + j) * d;
                for t in 0..d {
                    dot += qkv[q + t] * cache_k[kb + t];
                }
            }
            let s = dot * scale;
            sc[j] = s;
            local_max = f32::max(local_max, s);
        }
    }
    let total = softmax_shared(&mut sc, 0, &mut red, local_max, len, tid);
    let slices = WG / d;
    let t = tid % d;
    let slice = tid / d;
    let mut acc = 0.0f32;
    let steps = (len + slices - 1) / slices;
    for it in 0..steps {
        let j = it * slices + slice;
        if j < pos {
            acc += sc[j] * cache_v[(head * cap + j) * d + t];
        } else if j == pos {
            acc += sc[j] * qkv[2 * c + q + t];
        }
    }
    let s = sum_slices(&mut red, acc, d, tid);
    if tid < d {
        out[q + tid] = s / total;
    }
}
