//! `x · W + b` for the CPU backend in the browser: a register-blocked matmul on wasm SIMD.
//!
//! Why: profiled in the worker, BERT on the CPU spends ~77% of its time in the `gemm` crate's
//! wasm kernel (once softmax and GELU were fixed). A wasm microbenchmark in node, same machine,
//! `x · Wᵀ` at 120 rows: the crate ran 6.5–8 GFLOP/s where K = 384 (MiniLM: five of its six
//! projections) and ~22 where K ≥ 768; the 4×8 tile below ran 26–30 at every shape, its packing
//! included.
//!
//! How: W, burn's `[in, out]` (here a transposed view of PyTorch's `[out, in]` buffer, or a plain
//! matrix), is packed in turn into panels of 8 output columns, `[K][8]` each. A 4×8 tile of y is
//! 8 SIMD accumulators: per k, two loads from the panel and one broadcast of x per row. Packing
//! costs ~5% at 120 rows and more than the product at one row, so decoding (fewer than
//! [`ROWS_MIN`] rows) stays on burn's matmul.

use super::f32x4::F32x4;

/// Rows of a tile.
const MR: usize = 4;
/// Columns of a tile (two SIMD vectors) and of a packed panel.
const NR: usize = 8;
/// Below this many rows, burn's matmul (packing W would cost more than it saves).
pub const ROWS_MIN: usize = 16;

/// Where W `[k, n]` is: its element `(p, c)` at `values[offset + p·strides[0] + c·strides[1]]`.
pub struct Weight<'a> {
    pub values: &'a [f32],
    pub offset: usize,
    pub strides: [usize; 2],
}

impl Weight<'_> {
    /// Columns `j·NR..` as a panel, `[k][NR]`, zero-padded past `n`.
    fn pack(&self, j: usize, k: usize, n: usize, panel: &mut [f32]) {
        panel.fill(0.0);
        for c in 0..NR.min(n - j * NR) {
            let col = self.offset + (j * NR + c) * self.strides[1];
            for p in 0..k {
                panel[p * NR + c] = self.values[col + p * self.strides[0]];
            }
        }
    }
}

/// `y[m, n] = x[m, k] · W + bias`, with `x` row-major. W is packed one panel at a time (`k·NR`
/// values, reused across every row while it is in cache): a vocabulary-sized `lm_head` is never
/// copied whole.
pub fn matmul(
    x: &[f32],
    m: usize,
    k: usize,
    w: &Weight,
    n: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert!(x.len() >= m * k);
    let mut y = vec![0.0f32; m * n];
    let mut panel = vec![0.0f32; k * NR];
    for j in 0..n.div_ceil(NR) {
        let (col, cols) = (j * NR, NR.min(n - j * NR));
        w.pack(j, k, n, &mut panel);
        let mut b = [0.0f32; NR];
        if let Some(bias) = bias {
            b[..cols].copy_from_slice(&bias[col..col + cols]);
        }
        for i in (0..m).step_by(MR) {
            let rows = MR.min(m - i);
            let x = &x[i * k..];
            let mut out = [[0.0f32; NR]; MR];
            match rows {
                4 => tile::<4>(k, x, &panel, &mut out),
                3 => tile::<3>(k, x, &panel, &mut out),
                2 => tile::<2>(k, x, &panel, &mut out),
                _ => tile::<1>(k, x, &panel, &mut out),
            }
            for (r, out) in out.iter().take(rows).enumerate() {
                let y = &mut y[(i + r) * n + col..][..cols];
                for ((y, o), b) in y.iter_mut().zip(out).zip(&b) {
                    *y = o + b;
                }
            }
        }
    }
    y
}

/// One `R`×[`NR`] tile: `out[r] = x[r] · panel` over all of k.
#[inline(never)]
fn tile<const R: usize>(k: usize, x: &[f32], panel: &[f32], out: &mut [[f32; NR]; MR]) {
    assert!(panel.len() >= k * NR && x.len() >= (R - 1) * k + k);
    let (xp, pp) = (x.as_ptr(), panel.as_ptr());
    let mut acc = [[F32x4::zero(); 2]; R];
    for p in 0..k {
        // SAFETY: p < k, and the assert above bounds every read: the panel holds k·NR values,
        // x holds R rows of k.
        let (b0, b1) = unsafe { (F32x4::load(pp.add(p * NR)), F32x4::load(pp.add(p * NR + 4))) };
        for (r, acc) in acc.iter_mut().enumerate() {
            let a = unsafe { F32x4::splat_load(xp.add(r * k + p)) };
            acc[0] = acc[0].mul_add(a, b0);
            acc[1] = acc[1].mul_add(a, b1);
        }
    }
    for (acc, out) in acc.iter().zip(out.iter_mut()) {
        // SAFETY: each row of `out` holds NR = 8 values.
        unsafe {
            acc[0].store(out.as_mut_ptr());
            acc[1].store(out.as_mut_ptr().add(4));
        }
    }
}
