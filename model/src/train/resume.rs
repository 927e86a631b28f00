//! Saving a run part-way and continuing it later: the parameters (the trained ones, or every one),
//! AdamW's moments and the step count, plus a description of the run that must match before
//! anything is restored. Batches and
//! masks are replayed from the run's seed and dropout is seeded per step (`step_seed`), so a
//! resumed run takes the very steps the uninterrupted one would have taken. (HF's Trainer saves
//! the same things as `optimizer.pt`, `rng_state.pth` and `trainer_state.json`.)

use std::collections::HashMap;

use burn::module::{Param, ParamId};
use burn::tensor::{Tensor, TensorData};
use serde_json::{json, Value};

use crate::error::{DuetError, Result};
use crate::module_path::{MapAt, ModulePath, Tracked, VisitAt};
use crate::network::{read_f32_all, Network};
use crate::train::optim::AdamW;
use crate::train::setup::{Example, Prepared};
use crate::train::TrainConfig;
use crate::weights::Weights;

/// The tensors' file in a saved state (names `param.<path>`, `exp_avg.<path>`, `exp_avg_sq.<path>`,
/// and `best.<path>` for the best evaluation's weights, with burn's module paths; burn's layout,
/// not a checkpoint's).
pub const STATE_TENSORS: &str = "training_state.safetensors";
/// The step, and the run the state belongs to.
pub const STATE_JSON: &str = "trainer_state.json";

/// A run as it stood after `step` optimizer steps.
pub struct TrainState {
    pub step: usize,
    /// What the run was (settings, data): a state continues only the same run.
    pub run: Value,
    /// The best evaluation so far (`step`, `metrics`, `waited`, `last_eval`), for runs that keep
    /// or stop on it; its weights are the `best.<path>` tensors.
    pub best: Option<Value>,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl TrainState {
    /// The two files of a saved state, by name ([`STATE_JSON`], [`STATE_TENSORS`]).
    pub fn to_files(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        let mut meta = json!({"global_step": self.step, "run": self.run});
        if let Some(best) = &self.best {
            meta["best"] = best.clone();
        }
        Ok(vec![
            (
                STATE_JSON,
                serde_json::to_vec_pretty(&meta).expect("json values serialize"),
            ),
            (
                STATE_TENSORS,
                crate::train::export::safetensors_bytes(
                    &self.tensors,
                    crate::train::export::DType::F32,
                )?,
            ),
        ])
    }

    /// The names of the tensors it holds (`param.<path>`, `exp_avg.<path>`, `exp_avg_sq.<path>`,
    /// `best.<path>`).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|(name, _, _)| name.as_str())
    }

    /// Reads a state written by [`to_files`](Self::to_files).
    pub fn from_files(state_json: &[u8], tensors: &[u8]) -> Result<Self> {
        let bad = |m: String| DuetError::InvalidOption(format!("{STATE_JSON}: {m}"));
        let meta: Value = serde_json::from_slice(state_json).map_err(|e| bad(e.to_string()))?;
        let step = meta["global_step"]
            .as_u64()
            .ok_or_else(|| bad("no global_step".into()))? as usize;
        let run = meta
            .get("run")
            .cloned()
            .ok_or_else(|| bad("no run".into()))?;
        let weights = Weights::parse(tensors)?;
        let mut out = Vec::new();
        for key in weights.keys() {
            let t = weights.get(&key)?;
            out.push((key, t.shape, t.data));
        }
        Ok(Self {
            step,
            run,
            best: meta.get("best").cloned(),
            tensors: out,
        })
    }

    /// Refuses a state saved by another run, naming the first setting that differs.
    pub fn check_run(&self, run: &Value) -> Result<()> {
        let (Some(saved), Some(now)) = (self.run.as_object(), run.as_object()) else {
            return Err(DuetError::InvalidOption(
                "the saved state has no run".into(),
            ));
        };
        // Both ways: a setting named only when on (`random_offsets`) is missing from the other.
        for key in now.keys().chain(saved.keys()) {
            let (before, value) = (
                saved.get(key).unwrap_or(&Value::Null),
                now.get(key).unwrap_or(&Value::Null),
            );
            if before != value {
                return Err(DuetError::InvalidOption(format!(
                    "the saved state is from another run: its {key} was {before}, this run's is \
                     {value} (start afresh, or run it with the saved settings)"
                )));
            }
        }
        Ok(())
    }
}

/// The dropout seed of optimizer step `step` (0-based): a function of the run's seed and the step
/// alone, so a resumed run draws the masks the uninterrupted one would have drawn.
pub fn step_seed(seed: u64, step: usize) -> u64 {
    // SplitMix64's finaliser: neighbouring steps get unrelated seeds.
    let mut z = seed ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What makes a run this run: every setting that changes its steps, and its training data.
pub fn describe_run(
    cfg: &TrainConfig,
    prepared: &Prepared,
    train_set: &[Example],
    total_steps: usize,
) -> Value {
    let mut run = json!({
        "task": format!("{:?}", prepared.task),
        "labels": prepared.labels,
        "masking": prepared.masking.map(|m| format!("{:?}", m.config)),
        "trainable": format!("{:?}", cfg.trainable),
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "max_steps": cfg.max_steps,
        "total_steps": total_steps,
        "batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate,
        "weight_decay": cfg.weight_decay,
        "warmup_ratio": cfg.warmup_ratio,
        "warmup_steps": cfg.warmup_steps,
        "schedule": format!("{:?}", cfg.schedule),
        "max_grad_norm": cfg.max_grad_norm,
        "dropout": cfg.dropout,
        "group_by_length": cfg.group_by_length,
        "train_examples": train_set.len(),
        "train_data": format!("{:016x}", data_hash(train_set)),
    });
    // Named only when on, so that states saved before the setting existed still match.
    if cfg.random_offsets {
        run["random_offsets"] = json!(true);
    }
    if cfg.load_best_model_at_end {
        run["load_best_model_at_end"] = json!(true);
    }
    if let Some(p) = cfg.early_stopping_patience {
        run["early_stopping_patience"] = json!(p);
    }
    run
}

/// FNV-1a over every example's ids and targets.
fn data_hash(set: &[Example]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for e in set {
        for id in e.ids.iter().chain(&e.type_ids) {
            eat(&id.to_le_bytes());
        }
        eat(format!("{:?};", e.target).as_bytes());
    }
    h
}

/// Each float parameter's module path (burn's field names, `.`-joined), the frozen ones only when
/// `frozen`.
struct Paths {
    frozen: bool,
    params: Vec<(String, ParamId, Tensor<1>, Vec<usize>)>,
}

impl VisitAt for Paths {
    fn visit_float_at<const D: usize>(&mut self, at: &ModulePath, param: &Param<Tensor<D>>) {
        let value = param.val();
        if !self.frozen && !value.is_require_grad() {
            return;
        }
        let shape = value.dims().to_vec();
        let n: usize = shape.iter().product();
        self.params
            .push((at.joined(), param.id, value.reshape([n]), shape));
    }
}

/// The state of `network` trained by `optim` for `step` steps, its frozen parameters too when
/// `frozen` (without them, [`restore`] keeps the base's: the caller must make sure it is the same
/// base).
pub async fn capture(
    network: &Network,
    optim: &AdamW,
    step: usize,
    run: Value,
    frozen: bool,
) -> Result<TrainState> {
    let mut paths = Tracked::new(Paths {
        frozen,
        params: Vec::new(),
    });
    network.visit(&mut paths);
    let mut names = Vec::new();
    let mut flats = Vec::new();
    for (path, id, flat, shape) in paths.inner.params {
        let n = flat.dims()[0];
        if let Some((m, v)) = optim.moments(&id) {
            names.push((format!("exp_avg.{path}"), vec![n]));
            flats.push(m);
            names.push((format!("exp_avg_sq.{path}"), vec![n]));
            flats.push(v);
        }
        names.push((format!("param.{path}"), shape));
        flats.push(flat.inner());
    }
    let values = read_f32_all(flats).await?;
    let tensors = names
        .into_iter()
        .zip(values)
        .map(|((name, shape), data)| (name, shape, data))
        .collect();
    Ok(TrainState {
        step,
        run,
        best: None,
        tensors,
    })
}

/// Adds the best evaluation to `state`: `meta`, and when given its weights as `best.<path>`, the
/// trained parameters only (those the state holds as `param.<path>`; the rest are the base's).
pub async fn add_best(
    state: &mut TrainState,
    meta: Value,
    weights: Option<&Network>,
) -> Result<()> {
    state.best = Some(meta);
    let Some(network) = weights else {
        return Ok(());
    };
    let mut paths = Tracked::new(Paths {
        frozen: true,
        params: Vec::new(),
    });
    network.visit(&mut paths);
    let held: std::collections::HashSet<&str> = state.names().collect();
    let (names, flats): (Vec<_>, Vec<_>) = paths
        .inner
        .params
        .into_iter()
        .filter(|(path, ..)| held.contains(format!("param.{path}").as_str()))
        .map(|(path, _, flat, shape)| ((format!("best.{path}"), shape), flat.inner()))
        .unzip();
    let values = read_f32_all(flats).await?;
    state.tensors.extend(
        names
            .into_iter()
            .zip(values)
            .map(|((name, shape), data)| (name, shape, data)),
    );
    Ok(())
}

/// `network` (the run's weights as they stand, on the inference device) with the best
/// evaluation's weights the state holds put back; `None` when it holds none.
pub fn best_weights(network: Network, state: &TrainState) -> Result<Option<Network>> {
    // Named as the restorer reads them: `param.<path>`.
    let renamed: Vec<(String, &Vec<usize>, &Vec<f32>)> = state
        .tensors
        .iter()
        .filter_map(|(k, s, d)| Some((format!("param.{}", k.strip_prefix("best.")?), s, d)))
        .collect();
    if renamed.is_empty() {
        return Ok(None);
    }
    let mut by_param: HashMap<&str, (&Vec<usize>, &Vec<f32>)> = renamed
        .iter()
        .map(|(k, s, d)| (k.as_str(), (*s, *d)))
        .collect();
    let network = restore_from(network, &mut by_param, None, |extra| {
        format!("the saved state's best weights have `{extra}`, which this model lacks")
    })?;
    Ok(Some(network))
}

/// `network` with the saved values of its parameters (ids kept), and `optim` with their moments.
/// A frozen parameter the state does not hold keeps its value; a trained one must be there.
pub fn restore(network: Network, optim: &mut AdamW, state: &TrainState) -> Result<Network> {
    let mut saved: HashMap<&str, (&Vec<usize>, &Vec<f32>)> = state
        .tensors
        .iter()
        .filter(|(k, ..)| !k.starts_with("best."))
        .map(|(k, s, d)| (k.as_str(), (s, d)))
        .collect();
    let network = restore_from(network, &mut saved, Some(&mut *optim), |extra| {
        format!("the saved state has `{extra}`, which this model lacks (it is from another model)")
    })?;
    optim.set_steps(state.step);
    Ok(network)
}

/// `network` with the values in `saved` (taken out as they are used; `optim`, when given, gets
/// their moments); a name left over is an error `leftover` words.
fn restore_from<'b>(
    network: Network,
    saved: &mut HashMap<&'b str, (&'b Vec<usize>, &'b Vec<f32>)>,
    optim: Option<&mut AdamW>,
    leftover: impl Fn(&str) -> String,
) -> Result<Network> {
    let mut restorer = Tracked::new(Restorer {
        saved,
        optim,
        error: None,
    });
    let network = network.map(&mut restorer);
    if let Some(e) = restorer.inner.error {
        return Err(e);
    }
    match saved.keys().next() {
        Some(extra) => Err(DuetError::InvalidOption(leftover(extra))),
        None => Ok(network),
    }
}

struct Restorer<'a, 'b> {
    saved: &'a mut HashMap<&'b str, (&'b Vec<usize>, &'b Vec<f32>)>,
    /// Where the moments go; `None` for weights alone (the best evaluation's).
    optim: Option<&'a mut AdamW>,
    error: Option<DuetError>,
}

impl Restorer<'_, '_> {
    fn take(&mut self, key: &str, shape: &[usize]) -> Option<Vec<f32>> {
        match self.saved.remove(key) {
            Some((s, d)) if s.as_slice() == shape => Some(d.clone()),
            Some((s, _)) => {
                self.error.get_or_insert(DuetError::ShapeMismatch {
                    key: key.to_string(),
                    found: s.clone(),
                    expected: shape.to_vec(),
                });
                None
            }
            None => None,
        }
    }
}

impl MapAt for Restorer<'_, '_> {
    fn map_float_at<const D: usize>(
        &mut self,
        at: &ModulePath,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let path = at.joined();
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.dims().to_vec();
        let n: usize = shape.iter().product();
        let Some(values) = self.take(&format!("param.{path}"), &shape) else {
            if !tensor.is_require_grad() {
                // Frozen, and left out of the state: the base's value is the one it had.
                return Param::from_mapped_value(id, tensor, mapper);
            }
            self.error.get_or_insert(DuetError::MissingTensor {
                key: format!("param.{path}"),
                expected: shape.clone(),
            });
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let moments = (
            self.take(&format!("exp_avg.{path}"), &[n]),
            self.take(&format!("exp_avg_sq.{path}"), &[n]),
        );
        if let (Some(m), Some(v), Some(optim)) = (moments.0, moments.1, self.optim.as_mut()) {
            // The moments live where the optimizer computes them: beside the gradients, off the
            // autodiff graph.
            let inner = tensor.clone().inner().device();
            let flat = |d: Vec<f32>| Tensor::<1>::from_data(TensorData::new(d, [n]), &inner);
            optim.set_moments(id, flat(m), flat(v));
        }
        let mut value = Tensor::<D>::from_data(TensorData::new(values, shape), &tensor.device());
        if tensor.is_require_grad() {
            value = value.require_grad();
        }
        Param::from_mapped_value(id, value, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_seeds_differ_by_step_and_by_run() {
        let a: Vec<u64> = (0..1000).map(|s| step_seed(42, s)).collect();
        let mut unique = a.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), a.len());
        assert_ne!(step_seed(42, 0), step_seed(43, 0));
        assert_eq!(step_seed(42, 7), step_seed(42, 7));
    }

    #[test]
    fn a_state_from_another_run_is_refused_by_name() {
        let state = TrainState {
            step: 3,
            run: json!({"seed": 42, "batch_size": 8}),
            best: None,
            tensors: Vec::new(),
        };
        state
            .check_run(&json!({"seed": 42, "batch_size": 8}))
            .unwrap();
        let err = state
            .check_run(&json!({"seed": 42, "batch_size": 16}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("batch_size was 8") && err.contains("16"),
            "{err}"
        );
    }

    #[test]
    fn a_state_reads_back_what_was_written() {
        let state = TrainState {
            step: 5,
            run: json!({"seed": 1}),
            best: Some(json!({"step": 3, "waited": 1, "last_eval": 4})),
            tensors: vec![(
                "param.a.weight".into(),
                vec![2, 2],
                vec![1.0, -2.5, 3.25, 0.0],
            )],
        };
        let files = state.to_files().unwrap();
        let back = TrainState::from_files(&files[0].1, &files[1].1).unwrap();
        assert_eq!(back.step, 5);
        assert_eq!(back.run, state.run);
        assert_eq!(back.best, state.best);
        assert_eq!(back.tensors, state.tensors);
    }
}
