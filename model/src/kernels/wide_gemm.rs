//! The projection kernel for inputs with many rows (BERT over a batch, a long prompt): 64×64
//! output tiles, each unit holding an 8×4 block of them in registers.
//!
//! Why its own kernel: `gemm`'s units own outputs 16 apart, so every multiply-add in its inner
//! loop costs one scalar read of shared memory (two reads per two multiply-adds at its 2×2
//! blocks). On a large GPU that read, not the arithmetic, bounds it: BERT-base at batch 8 ran at
//! about half transformers.js's speed on an H200. Here each unit's rows and columns are adjacent,
//! kept in shared memory as 4-wide vectors, so one step along `k` is three vector reads for 32
//! multiply-adds; and the next step's inputs are read from global memory into registers while
//! this step computes, so the wait for memory overlaps the arithmetic. Measured on an H200 in
//! Chromium (BERT-base, batch 8, 154 tokens): 175 sentences/s with `gemm` alone, 272 with 4×4
//! blocks, 277–288 with 8×4.

// Cube code: cubecl's frontend has no `div_ceil`; comptime flags are tested on their own.
#![allow(clippy::manual_div_ceil, clippy::collapsible_if)]

use super::store_projection;
use burn_cubecl::cubecl;
use cubecl::prelude::*;

type F4 = Vector<f32, Const<4>>;

/// The output tile of `gemm_wide` (rows and columns), and the rows each unit computes (a multiple
/// of 4 dividing 64: 8 measured 2–5% faster than 4 on an H200).
pub(super) const WIDE_TILE: usize = 64;
pub(super) const WIDE_ROWS: usize = 8;

/// Rows `row..row + 4` of `x` `[m, k]` at column `kc`, zero outside it.
#[cube]
fn x_quad(x: &[f32], m: usize, k: usize, row: usize, kc: usize) -> F4 {
    let mut v = F4::empty();
    #[unroll]
    for i in 0..4usize {
        let mut e = 0.0f32;
        if row + i < m && kc < k {
            e = x[(row + i) * k + kc];
        }
        v.insert(i, e);
    }
    v
}

/// Columns `col..col + 4` of `w` (`[k, n]` through its strides) at row `kc`, zero outside it.
#[cube]
fn w_quad(w: &[f32], k: usize, n: usize, w_k: usize, w_n: usize, kc: usize, col: usize) -> F4 {
    let mut v = F4::empty();
    #[unroll]
    for j in 0..4usize {
        let mut e = 0.0f32;
        if kc < k && col + j < n {
            e = w[kc * w_k + (col + j) * w_n];
        }
        v.insert(j, e);
    }
    v
}

/// `act(x·W + b) (+ res)`: out `[m, n]` from `x` `[m, k]` and `w` read through its strides
/// `w_k`, `w_n` (`[k, n]`, or `[n, k]` seen transposed: `w_kmajor`). One 64×64 tile per
/// workgroup of `16 · 64 / WIDE_ROWS` units, each computing `WIDE_ROWS`×4 outputs; 16-wide steps
/// along `k`.
#[cube(launch_unchecked)]
pub(super) fn gemm_wide(
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
    let rows = comptime![WIDE_ROWS];
    let units = comptime![16 * 64 / WIDE_ROWS];
    let quads = comptime![rows / 4]; // row quads per unit, and entries each unit stages per step
    let tid = UNIT_POS as usize;
    // This unit computes rows `rows·ty..` and columns `4·tx..` of the tile.
    let tx = tid % 16;
    let ty = tid / 16;
    let col0 = CUBE_POS_X as usize * 64;
    let row0 = CUBE_POS_Y as usize * 64;
    // One step's inputs, each entry four adjacent rows (columns) at one `k`: [16 k][16 quads].
    let mut sa = Shared::<[F4]>::new_slice(256usize);
    let mut sb = Shared::<[F4]>::new_slice(256usize);
    let mut acc = Array::<f32>::new(comptime![rows * 4]);
    #[unroll]
    for i in 0..comptime![rows * 4] {
        acc[i] = 0.0f32;
    }
    // What this unit brings to shared memory, entry `tid + l·units`: a quad of `x`'s rows at one
    // `k`, with neighbouring units along `k` (the contiguous dimension of `x`); a quad of `w`'s
    // columns, with neighbouring units along `w`'s contiguous dimension (`k` for `[n, k]`).
    let mut pa = Array::<F4>::new(quads);
    let mut pb = Array::<F4>::new(quads);
    let steps = (k + 15) / 16;
    #[unroll]
    for l in 0..quads {
        let e = tid + l * units;
        pa[l] = x_quad(x, m, k, row0 + 4 * (e / 16), e % 16);
        pb[l] = w_quad(
            w,
            k,
            n,
            w_k,
            w_n,
            b_k(e, w_kmajor),
            col0 + 4 * b_quad(e, w_kmajor),
        );
    }
    for step in 0..steps {
        #[unroll]
        for l in 0..quads {
            let e = tid + l * units;
            sa[(e % 16) * 16 + e / 16] = pa[l];
            sb[b_k(e, w_kmajor) * 16 + b_quad(e, w_kmajor)] = pb[l];
        }
        sync_cube();
        // The next step's reads are in flight while this one computes.
        let k1 = (step + 1) * 16;
        if step + 1 < steps {
            #[unroll]
            for l in 0..quads {
                let e = tid + l * units;
                pa[l] = x_quad(x, m, k, row0 + 4 * (e / 16), k1 + e % 16);
                pb[l] = w_quad(
                    w,
                    k,
                    n,
                    w_k,
                    w_n,
                    k1 + b_k(e, w_kmajor),
                    col0 + 4 * b_quad(e, w_kmajor),
                );
            }
        }
        #[unroll]
        for kk in 0..16usize {
            let b = sb[kk * 16 + tx];
            #[unroll]
            for q in 0..quads {
                let a = sa[kk * 16 + ty * quads + q];
                #[unroll]
                for i in 0..4usize {
                    let ai = a.extract(i);
                    #[unroll]
                    for j in 0..4usize {
                        acc[(q * 4 + i) * 4 + j] += ai * b.extract(j);
                    }
                }
            }
        }
        sync_cube();
    }
    #[unroll]
    for i in 0..rows {
        let row = row0 + rows * ty + i;
        #[unroll]
        for j in 0..4usize {
            let col = col0 + 4 * tx + j;
            if row < m && col < n {
                let y = acc[i * 4 + j];
                store_projection(out, bias, res, y, row, col, n, has_bias, act, has_res);
            }
        }
    }
}

/// The column quad of `w` that staging entry `e` holds: neighbouring entries go along `w`'s
/// contiguous dimension, `k` for an `[n, k]` buffer (`w_kmajor`), `n` otherwise.
#[cube]
fn b_quad(e: usize, #[comptime] w_kmajor: bool) -> usize {
    let mut q = e % 16;
    if w_kmajor {
        q = e / 16;
    }
    q
}

/// The `k` offset within the step of staging entry `e` of `w` (see `b_quad`).
#[cube]
fn b_k(e: usize, #[comptime] w_kmajor: bool) -> usize {
    let mut kk = e / 16;
    if w_kmajor {
        kk = e % 16;
    }
    kk
}
