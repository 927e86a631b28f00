//! What each building block of a forward pass costs on this device: the profile behind the
//! speed work. A model's time per call is the sum of these; timing them one by one on the real
//! device (WebGPU in the browser, `flex` natively) shows which one dominates, where a whole-model
//! profile only shows the worker waiting for the GPU.
//!
//! Each op runs `reps` times back to back after a warm-up (kernel compilation, allocations), and
//! the clock stops when the last result is read back: the GPU runs submissions in order, so that
//! read waits for every rep. A read of an already computed scalar (`sync`) is the floor every row
//! includes once.

use crate::nn::linear;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{activation, Bool, Device, Distribution, Int, Tensor};
use serde::Serialize;

use crate::error::Result;
use crate::network::read_f32;
use crate::nn::{attention, merge_heads, split_heads, LayerNorm};

/// One op's time, in milliseconds per call.
#[derive(Debug, Clone, Serialize)]
pub struct OpTiming {
    pub op: String,
    pub ms: f64,
}

/// BERT-base / GPT-2-small widths: what the speed targets are stated for.
const WIDTH: usize = 768;
const HEADS: usize = 12;

/// Times the ops of a transformer layer at `tokens` ∈ {1, `seq`}, `reps` calls each.
pub async fn bench_ops(
    device: &Device,
    seq: usize,
    reps: usize,
    now: impl Fn() -> f64,
) -> Result<Vec<OpTiming>> {
    let reps = reps.max(1);
    let mut out = Vec::new();
    let rand = |shape: [usize; 3]| Tensor::<3>::random(shape, Distribution::Default, device);
    let w_qkv = Tensor::<2>::random([WIDTH, WIDTH], Distribution::Default, device);
    let w_up = Tensor::<2>::random([WIDTH, 4 * WIDTH], Distribution::Default, device);
    let bias = Tensor::<1>::zeros([4 * WIDTH], device);
    let norm = LayerNorm::new(WIDTH, 1e-12, device);
    let no_dropout: Dropout = DropoutConfig::new(0.0).init();

    // The floor: a read of a value the GPU already has.
    let ready = Tensor::<1>::zeros([1], device);
    read_f32(ready.clone()).await?;
    let t0 = now();
    for _ in 0..reps {
        read_f32(ready.clone()).await?;
    }
    out.push(OpTiming {
        op: "read back one value (the floor of every call)".into(),
        ms: 1e3 * (now() - t0) / reps as f64,
    });

    for t in [1, seq] {
        let x = rand([1, t, WIDTH]);
        let h = rand([1, t, 4 * WIDTH]);
        let q = split_heads(rand([1, t, WIDTH]), HEADS);
        let k = split_heads(rand([1, t, WIDTH]), HEADS);
        let v = split_heads(rand([1, t, WIDTH]), HEADS);
        let scores = Tensor::<4>::random([1, HEADS, t, t], Distribution::Default, device);
        let pad: Tensor<4, Bool> = Tensor::<2, Int>::ones([1, t], device)
            .equal_elem(0)
            .reshape([1, 1, 1, t]);
        let w = w_up.clone().slice([0..WIDTH, 0..WIDTH]);
        time(
            &mut out,
            format!("linear {t}×{WIDTH}→{WIDTH}"),
            reps,
            &now,
            || linear(x.clone(), w_qkv.clone(), None),
        )
        .await?;
        time(
            &mut out,
            format!("linear {t}×{WIDTH}→{}", 4 * WIDTH),
            reps,
            &now,
            || linear(x.clone(), w_up.clone(), Some(bias.clone())),
        )
        .await?;
        time(
            &mut out,
            format!("linear {t}×{WIDTH}→{WIDTH}, sliced weight"),
            reps,
            &now,
            || linear(x.clone(), w.clone(), None),
        )
        .await?;
        time(
            &mut out,
            format!("layer norm {t}×{WIDTH}"),
            reps,
            &now,
            || norm.forward(x.clone()),
        )
        .await?;
        time(
            &mut out,
            format!("GELU {t}×{}", 4 * WIDTH),
            reps,
            &now,
            || activation::gelu(h.clone()),
        )
        .await?;
        time(
            &mut out,
            format!("residual add {t}×{WIDTH}"),
            reps,
            &now,
            || x.clone() + x.clone(),
        )
        .await?;
        time(
            &mut out,
            format!("split + merge heads {t}×{WIDTH}"),
            reps,
            &now,
            || merge_heads(split_heads(x.clone(), HEADS)),
        )
        .await?;
        let qt = q.clone();
        let kt = k.clone();
        time(
            &mut out,
            format!("q·kᵀ {HEADS}×{t}×{t}"),
            reps,
            &now,
            || qt.clone().matmul(kt.clone().swap_dims(2, 3)),
        )
        .await?;
        time(
            &mut out,
            format!("padding mask fill {HEADS}×{t}×{t}"),
            reps,
            &now,
            || {
                scores
                    .clone()
                    .mask_fill(pad.clone().expand([1, HEADS, t, t]), f32::MIN)
            },
        )
        .await?;
        time(
            &mut out,
            format!("softmax {HEADS}×{t}×{t}"),
            reps,
            &now,
            || activation::softmax(scores.clone(), 3),
        )
        .await?;
        time(
            &mut out,
            format!("attention, {HEADS} heads × {t} tokens"),
            reps,
            &now,
            || {
                attention(
                    q.clone(),
                    k.clone(),
                    v.clone(),
                    Some(pad.clone()),
                    0.125,
                    &no_dropout,
                )
            },
        )
        .await?;
    }
    Ok(out)
}

/// Runs `op` once to warm up, then `reps` times, and records the time per call until the last
/// result is read back.
async fn time<const D: usize>(
    out: &mut Vec<OpTiming>,
    name: String,
    reps: usize,
    now: &impl Fn() -> f64,
    op: impl Fn() -> Tensor<D>,
) -> Result<()> {
    read_f32(first(op())).await?;
    let t0 = now();
    let mut last = None;
    for _ in 0..reps {
        last = Some(op());
    }
    if let Some(y) = last {
        read_f32(first(y)).await?;
    }
    out.push(OpTiming {
        op: name,
        ms: 1e3 * (now() - t0) / reps as f64,
    });
    Ok(())
}

/// The first element, so the read-back itself costs the same for every op.
fn first<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    t.flatten::<1>(0, D - 1).narrow(0, 0, 1)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;

    #[test]
    fn every_op_is_timed_at_both_lengths() {
        let device = crate::device::cpu();
        let start = std::time::Instant::now();
        let rows =
            crate::device::block_on(bench_ops(&device, 8, 2, || start.elapsed().as_secs_f64()))
                .unwrap();
        // The floor, then 11 ops at 1 token and 11 at 8.
        assert_eq!(rows.len(), 1 + 2 * 11, "{rows:?}");
        assert!(rows.iter().all(|r| r.ms.is_finite() && r.ms >= 0.0));
        assert!(rows.iter().any(|r| r.op == "softmax 12×8×8"), "{rows:?}");
        assert!(rows.iter().any(|r| r.op == "linear 1×768→3072"), "{rows:?}");
    }
}
