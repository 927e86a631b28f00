//! A run saved part-way and continued is the run that was never stopped: the same losses after
//! the save and the same weights at the end, dropout on, for a causal LM, a masked LM (whose
//! masks are replayed), a causal LM whose blocks are re-cut each epoch (whose offsets are) and
//! LoRA, whose state may leave the frozen base out; a run that keeps its best evaluation and
//! stops early keeps and stops on the same ones. A state from another run is refused.

mod common;

use std::cell::RefCell;
use std::sync::Mutex;

use common::*;
use duet_model::device::block_on;
use duet_model::train::export::named_tensors;
use duet_model::train::lora::LoraConfig;
use duet_model::train::resume::TrainState;
use duet_model::train::{
    encode_examples, prepare, train_checkpointed, Checkpoints, Example, MaskingConfig, Prepared,
    Task, TaskData, TrainConfig, TrainEvent, Trainable,
};
use duet_model::Model;

const TEXT: &str = "the cat sat on the mat and looked at the door\n\
    a dog ran across the yard to find the ball\n\
    rain fell all night on the quiet little town\n\
    she opened the window and the cold air came in\n\
    the old man read the paper by the fire\n\
    children played in the park until the sun went down\n\
    he wrote a letter to his brother in the city\n\
    the train left the station late in the evening";

/// The CPU backend's random generator (dropout's masks) is the process's, and the test harness
/// runs tests on parallel threads: one run at a time keeps each run's masks its own.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Run {
    losses: Vec<(usize, f32)>,
    evals: Vec<(usize, f64)>,
    weights: Vec<(String, Vec<usize>, Vec<f32>)>,
    saved: Option<TrainState>,
    best_step: Option<usize>,
    stopped_early: bool,
}

/// Trains `model` on `set` with `cfg` (evaluating on `eval`), from `from` when given, stopping
/// after `stop_at` steps when given (the state saved then comes back in `saved`, with the frozen
/// parameters when `frozen`).
#[allow(clippy::too_many_arguments)] // the run's inputs, and how it is stopped and saved
fn run(
    model: &Model,
    prepared: &Prepared,
    set: &[Example],
    eval: &[Example],
    cfg: &TrainConfig,
    from: Option<TrainState>,
    stop_at: Option<usize>,
    frozen: bool,
) -> Run {
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let saved = RefCell::new(None);
    let mut save = |state: TrainState, _: Model| {
        *saved.borrow_mut() = Some(state);
        Ok(())
    };
    let mut losses = Vec::new();
    let mut evals = Vec::new();
    let outcome = block_on(train_checkpointed(
        model.clone(),
        prepared,
        set,
        eval,
        cfg.clone(),
        Checkpoints {
            from: from.as_ref(),
            // Saved only when stopped: every 1000 steps never comes in these short runs.
            every: 1000,
            save: Some(&mut save),
            frozen,
        },
        |e| match e {
            TrainEvent::Step { step, loss, .. } => {
                losses.push((*step, *loss));
                stop_at != Some(*step)
            }
            TrainEvent::Eval { step, metrics } => {
                evals.push((*step, metrics.loss));
                true
            }
        },
        || 0.0,
    ))
    .unwrap();
    assert_eq!(outcome.cancelled, stop_at.is_some());
    let weights = block_on(named_tensors(
        &outcome.model.network,
        &outcome.model.config.arch,
    ))
    .unwrap();
    Run {
        losses,
        evals,
        weights,
        saved: saved.into_inner(),
        best_step: outcome.best_step,
        stopped_early: outcome.stopped_early,
    }
}

/// Uninterrupted vs stopped after `stop` steps and resumed: identical from the save on. The state
/// is returned.
fn assert_resumes_exactly(
    model: Model,
    task: Task,
    max_length: usize,
    cfg: TrainConfig,
    stop: usize,
    frozen: bool,
) -> TrainState {
    let data = TaskData::parse(task, TEXT).unwrap();
    let (model, mut prepared, set) = prepare(model, task, &data, max_length).unwrap();
    if let Some(m) = &mut prepared.masking {
        m.config = MaskingConfig {
            probability: 0.3,
            whole_word: true,
        };
    }
    let whole = run(&model, &prepared, &set, &[], &cfg, None, None, frozen);
    let total = whole.losses.len();
    assert!(total > stop + 2, "{total} steps: too few to stop part-way");

    let first = run(&model, &prepared, &set, &[], &cfg, None, Some(stop), frozen);
    assert_eq!(
        first.losses,
        whole.losses[..stop],
        "the same run up to the stop"
    );
    let state = first.saved.expect("a stopped run saves its state");
    assert_eq!(state.step, stop);
    // Through the files, as the CLI stores it.
    let files = state.to_files().unwrap();
    let state = TrainState::from_files(&files[0].1, &files[1].1).unwrap();

    let rest = run(
        &model,
        &prepared,
        &set,
        &[],
        &cfg,
        Some(TrainState::from_files(&files[0].1, &files[1].1).unwrap()),
        None,
        frozen,
    );
    assert_eq!(
        rest.losses,
        whole.losses[stop..],
        "the steps after the save"
    );
    assert_eq!(rest.weights.len(), whole.weights.len());
    for ((key, _, a), (_, _, b)) in rest.weights.iter().zip(&whole.weights) {
        assert_eq!(a, b, "{key} after the last step");
    }
    // Had the stop not been resumed, the weights would differ: the comparison can fail.
    assert_ne!(first.weights, whole.weights);
    state
}

fn cfg(trainable: Trainable) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 2,
        learning_rate: 5e-3,
        warmup_ratio: 0.2,
        trainable,
        dropout: true,
        ..TrainConfig::default()
    }
}

#[test]
fn a_resumed_causal_lm_run_is_the_uninterrupted_run() {
    assert_resumes_exactly(
        load("gpt2-tiny"),
        Task::CausalLm,
        16,
        cfg(Trainable::All),
        5,
        true,
    );
}

#[test]
fn a_resumed_run_with_random_block_offsets_replays_its_offsets() {
    let offsets = TrainConfig {
        random_offsets: true,
        ..cfg(Trainable::All)
    };
    // Stopped in the second epoch, so that the first epoch's offset is replayed.
    assert_resumes_exactly(
        load("gpt2-tiny"),
        Task::CausalLm,
        16,
        offsets.clone(),
        5,
        true,
    );
    // And the offsets change the run: the same settings with fixed blocks train otherwise.
    let data = TaskData::parse(Task::CausalLm, TEXT).unwrap();
    let (model, prepared, set) = prepare(load("gpt2-tiny"), Task::CausalLm, &data, 16).unwrap();
    let fixed = run(
        &model,
        &prepared,
        &set,
        &[],
        &cfg(Trainable::All),
        None,
        None,
        true,
    );
    let shifted = run(&model, &prepared, &set, &[], &offsets, None, None, true);
    let again = run(&model, &prepared, &set, &[], &offsets, None, None, true);
    assert_eq!(shifted.losses, again.losses, "seeded");
    assert_eq!(fixed.losses.len(), shifted.losses.len(), "as many steps");
    assert_ne!(fixed.losses, shifted.losses);
}

#[test]
fn a_resumed_run_keeps_the_same_best_evaluation_and_stops_at_the_same_step() {
    let data = TaskData::parse(Task::CausalLm, &TEXT[..TEXT.len() / 2]).unwrap();
    let (model, prepared, set) = prepare(load("gpt2-tiny"), Task::CausalLm, &data, 16).unwrap();
    let held_out = TaskData::parse(Task::CausalLm, &TEXT[TEXT.len() / 2..]).unwrap();
    let eval = encode_examples(&model, &prepared, &held_out, 16).unwrap();
    let c = TrainConfig {
        epochs: 12,
        learning_rate: 2e-2,
        load_best_model_at_end: true,
        early_stopping_patience: Some(3),
        ..cfg(Trainable::All)
    };
    let whole = run(&model, &prepared, &set, &eval, &c, None, None, true);
    assert!(
        whole.stopped_early && whole.best_step.is_some(),
        "the test needs a run that keeps an earlier step and stops early: {:?}",
        whole.evals
    );
    let per_epoch = set.len().div_ceil(c.batch_size);
    let best = whole.best_step.unwrap();
    // Stopped (as Ctrl-C stops: before the step's evaluation) at an evaluation after the best,
    // and at the step just after one.
    for stop in [best + per_epoch, best + per_epoch + 1] {
        let first = run(&model, &prepared, &set, &eval, &c, None, Some(stop), true);
        let state = first.saved.expect("a stopped run saves its state");
        let files = state.to_files().unwrap();
        let state = TrainState::from_files(&files[0].1, &files[1].1).unwrap();
        assert!(
            state.names().any(|n| n.starts_with("best.")),
            "the best weights are saved"
        );
        let rest = run(&model, &prepared, &set, &eval, &c, Some(state), None, true);
        assert_eq!(rest.best_step, whole.best_step, "stopped at {stop}");
        assert!(rest.stopped_early);
        assert_eq!(rest.losses.last(), whole.losses.last());
        assert_eq!(rest.evals.last(), whole.evals.last());
        assert_eq!(rest.weights, whole.weights, "the best step's weights");
    }
}

#[test]
fn a_resumed_masked_lm_run_replays_its_masks() {
    assert_resumes_exactly(
        load("bert-mlm-f16"),
        Task::MaskedLm,
        16,
        cfg(Trainable::All),
        4,
        true,
    );
}

fn lora() -> Trainable {
    Trainable::Lora(LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.1,
        target_modules: vec!["q_lin".into(), "v_lin".into()],
    })
}

#[test]
fn a_resumed_lora_run_continues_its_adapters_with_or_without_its_frozen_base() {
    let resumes = |frozen| {
        assert_resumes_exactly(
            load("distilbert-mlm"),
            Task::MaskedLm,
            16,
            cfg(lora()),
            3,
            frozen,
        )
    };
    // As the CLI saves a run: every parameter.
    let whole = resumes(true);
    assert!(
        whole
            .names()
            .any(|n| n == "param.distilbert.transformer.layer.0.attention.q_lin.weight"),
        "the frozen base is kept: {:?}",
        whole.names().collect::<Vec<_>>()
    );
    // As the tab keeps a stopped run: the adapters, the head and their moments, not the base.
    let trained = resumes(false);
    let names: Vec<&str> = trained.names().collect();
    let params: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix("param."))
        .collect();
    assert!(params.iter().any(|p| p.ends_with("lora.a")), "{params:?}");
    for p in &params {
        assert!(
            names.contains(&format!("exp_avg.{p}").as_str()),
            "`{p}` is saved but is not trained"
        );
    }
    assert!(names.len() < whole.names().count());
}

#[test]
fn a_state_from_other_settings_or_data_is_refused() {
    let data = TaskData::parse(Task::CausalLm, TEXT).unwrap();
    let (model, prepared, set) = prepare(load("gpt2-tiny"), Task::CausalLm, &data, 16).unwrap();
    let c = cfg(Trainable::All);
    let state = run(&model, &prepared, &set, &[], &c, None, Some(2), true)
        .saved
        .unwrap();
    let err = |cfg: &TrainConfig, set: &[Example], state: TrainState| {
        let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let mut save = |_: TrainState, _: Model| Ok(());
        block_on(train_checkpointed(
            model.clone(),
            &prepared,
            set,
            &[],
            cfg.clone(),
            Checkpoints {
                from: Some(&state),
                every: 0,
                save: Some(&mut save),
                frozen: true,
            },
            |_| true,
            || 0.0,
        ))
        .err()
        .expect("refused")
        .to_string()
    };
    let files = state.to_files().unwrap();
    let again = || TrainState::from_files(&files[0].1, &files[1].1).unwrap();
    let other_lr = TrainConfig {
        learning_rate: 1e-3,
        ..c.clone()
    };
    let e = err(&other_lr, &set, again());
    assert!(e.contains("learning_rate was 0.005"), "{e}");
    // A setting named only when on is checked both ways.
    let offsets = TrainConfig {
        random_offsets: true,
        ..c.clone()
    };
    let e = err(&offsets, &set, again());
    assert!(
        e.contains("random_offsets was null, this run's is true"),
        "{e}"
    );
    let shifted = run(&model, &prepared, &set, &[], &offsets, None, Some(2), true)
        .saved
        .unwrap();
    let e = err(&c, &set, shifted);
    assert!(e.contains("random_offsets was true"), "{e}");
    let e = err(&c, &set[1..], again());
    assert!(
        e.contains("train_examples") || e.contains("train_data"),
        "{e}"
    );
    let mut changed = set.to_vec();
    changed[0].ids[1] = changed[0].ids[2];
    let e = err(&c, &changed, again());
    assert!(e.contains("train_data"), "{e}");
}
