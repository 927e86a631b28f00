//! What the pages may ask the engine for: the limits of a tab, and the checks that refuse a
//! setting outside them with a message, rather than quietly running another value (a batch of 0
//! used to train with 1, 0 epochs to train one, a held-out fraction of 0.9 to hold out 0.5).
//! Plain logic, so its tests run natively.

use duet_protocol::{PretrainParams, TrainParams};

/// The most examples (fine-tuning) or blocks (pretraining) a step takes here.
pub const MAX_BATCH: usize = 256;
/// The largest part of the data held out for evaluation; the rest trains.
pub const MAX_EVAL_FRACTION: f64 = 0.5;
/// The most fills the Fill-mask page lists.
pub const MAX_FILLS: usize = 50;
/// The most beams the strategies' beam-search column keeps (one beam is greedy, not a beam search).
pub const MAX_BEAMS: usize = 16;

fn batch(n: usize, what: &str) -> Result<(), String> {
    if (1..=MAX_BATCH).contains(&n) {
        Ok(())
    } else {
        Err(format!("a batch of {n} {what}: use 1 to {MAX_BATCH}"))
    }
}

/// A fine-tuning run's settings.
pub fn fine_tune(p: &TrainParams) -> Result<(), String> {
    if p.epochs == 0 {
        return Err("epochs must be at least 1".into());
    }
    batch(p.batch_size, "examples")?;
    if !(0.0..=MAX_EVAL_FRACTION).contains(&p.eval_fraction) {
        return Err(format!(
            "a held-out fraction of {}: use 0 to {MAX_EVAL_FRACTION} (the rest trains)",
            p.eval_fraction
        ));
    }
    if p.trainable == "lora" && p.lora_rank == 0 {
        return Err("the LoRA rank must be at least 1".into());
    }
    Ok(())
}

/// A pretraining run's settings; a continued run keeps the batch size it started with.
pub fn pretrain(p: &PretrainParams, resume: bool) -> Result<(), String> {
    if p.steps == 0 {
        return Err("steps must be at least 1".into());
    }
    if p.sample_every == 0 {
        return Err("\"sample every\" must be at least 1 step".into());
    }
    if !resume {
        batch(p.batch_size, "blocks")?;
    }
    Ok(())
}

/// How many fills the Fill-mask page asks for.
pub fn fills(top_k: usize) -> Result<(), String> {
    if (1..=MAX_FILLS).contains(&top_k) {
        Ok(())
    } else {
        Err(format!("top-k of {top_k}: use 1 to {MAX_FILLS}"))
    }
}

/// How many beams the strategies' beam search keeps.
pub fn beams(n: usize) -> Result<(), String> {
    if (2..=MAX_BEAMS).contains(&n) {
        Ok(())
    } else {
        Err(format!("{n} beams: use 2 to {MAX_BEAMS}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train() -> TrainParams {
        TrainParams {
            task: "classify".into(),
            data: String::new(),
            trainable: "lora".into(),
            lora_rank: 8,
            epochs: 3,
            max_steps: 0,
            batch_size: 8,
            learning_rate: 1e-3,
            eval_fraction: 0.2,
            seed: 42,
            load_best: false,
            early_stopping_patience: 0,
            random_offsets: false,
        }
    }

    #[test]
    fn fine_tuning_settings_outside_the_limits_are_refused() {
        assert_eq!(fine_tune(&train()), Ok(()));
        let refused = |f: fn(&mut TrainParams)| {
            let mut p = train();
            f(&mut p);
            fine_tune(&p).unwrap_err()
        };
        assert!(refused(|p| p.epochs = 0).contains("epochs"));
        assert!(refused(|p| p.batch_size = 0).contains("a batch of 0 examples"));
        assert!(refused(|p| p.batch_size = MAX_BATCH + 1).contains("use 1 to 256"));
        assert!(refused(|p| p.eval_fraction = 0.9).contains("held-out fraction of 0.9"));
        assert!(refused(|p| p.eval_fraction = -0.1).contains("held-out"));
        assert!(refused(|p| p.lora_rank = 0).contains("LoRA rank"));
        // The rank is a LoRA run's only: other modes ignore it.
        let mut p = train();
        p.trainable = "all".into();
        p.lora_rank = 0;
        assert_eq!(fine_tune(&p), Ok(()));
        p.eval_fraction = 0.0;
        assert_eq!(fine_tune(&p), Ok(()), "nothing held out is a choice");
    }

    #[test]
    fn pretraining_settings_outside_the_limits_are_refused() {
        let ok = PretrainParams::default();
        assert_eq!(pretrain(&ok, false), Ok(()));
        let with = |f: fn(&mut PretrainParams)| {
            let mut p = PretrainParams::default();
            f(&mut p);
            p
        };
        assert!(pretrain(&with(|p| p.steps = 0), true)
            .unwrap_err()
            .contains("steps"));
        assert!(pretrain(&with(|p| p.sample_every = 0), false)
            .unwrap_err()
            .contains("sample every"));
        let no_batch = with(|p| p.batch_size = 0);
        assert!(pretrain(&no_batch, false)
            .unwrap_err()
            .contains("a batch of 0 blocks"));
        assert_eq!(
            pretrain(&no_batch, true),
            Ok(()),
            "a continued run keeps its batch"
        );
    }

    #[test]
    fn fills_and_beams_have_their_ranges() {
        assert!(fills(0).is_err() && fills(1).is_ok() && fills(50).is_ok() && fills(51).is_err());
        assert!(beams(1).is_err() && beams(2).is_ok() && beams(16).is_ok() && beams(17).is_err());
    }
}
