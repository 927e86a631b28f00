//! AdamW exactly as `torch.optim.AdamW` (decoupled weight decay, bias-corrected moments), with
//! HF Trainer's parameter groups (no decay on biases and LayerNorm), `clip_grad_norm_`'s global
//! norm clipping, and HF's learning-rate schedules. All on device: nothing is read back.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::module_path::{MapAt, ModulePath, Tracked};

/// HF `get_{constant,linear,cosine}_schedule_with_warmup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    Constant,
    Linear,
    Cosine,
}

impl std::str::FromStr for Schedule {
    type Err = crate::DuetError;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "constant" => Ok(Self::Constant),
            "linear" => Ok(Self::Linear),
            "cosine" => Ok(Self::Cosine),
            _ => Err(crate::DuetError::InvalidOption(format!(
                "schedule `{s}` (use constant, linear or cosine)"
            ))),
        }
    }
}

/// Learning rate for optimizer step `step` (0-based), as the HF `LambdaLR` gives it: warm-up
/// rises linearly from 0, then the rate decays to 0 at `total` steps.
pub fn lr_at(base: f64, step: usize, warmup: usize, total: usize, schedule: Schedule) -> f64 {
    if step < warmup {
        return base * step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    match schedule {
        Schedule::Constant => base,
        Schedule::Linear => base * (1.0 - progress).max(0.0),
        Schedule::Cosine => base * (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0),
    }
}

/// First and second moments of one parameter, flattened.
#[derive(Clone)]
struct Moments {
    m: Tensor<1>,
    v: Tensor<1>,
}

#[derive(Clone)]
pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    state: HashMap<ParamId, Moments>,
    steps: usize,
}

impl AdamW {
    pub fn new(weight_decay: f64) -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            state: HashMap::new(),
            steps: 0,
        }
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The first and second moments of parameter `id` (flattened), once it has been updated.
    pub(crate) fn moments(&self, id: &ParamId) -> Option<(Tensor<1>, Tensor<1>)> {
        self.state.get(id).map(|s| (s.m.clone(), s.v.clone()))
    }

    /// Restores parameter `id`'s moments (a resumed run, see `train::resume`).
    pub(crate) fn set_moments(&mut self, id: ParamId, m: Tensor<1>, v: Tensor<1>) {
        self.state.insert(id, Moments { m, v });
    }

    /// Restores the step count, which the bias correction and the schedule read.
    pub(crate) fn set_steps(&mut self, steps: usize) {
        self.steps = steps;
    }

    /// One update of every parameter that has a gradient. `max_grad_norm` clips the global norm
    /// of all gradients first, as `torch.nn.utils.clip_grad_norm_`.
    pub fn step<M: Module>(
        &mut self,
        module: M,
        mut grads: GradientsParams,
        lr: f64,
        max_grad_norm: Option<f64>,
    ) -> M {
        let coef = max_grad_norm.and_then(|max| {
            let mut norm = SquaredNorm {
                grads: &grads,
                total: None,
            };
            module.visit(&mut norm);
            // clip_coef = max / (‖g‖ + 1e-6), applied only when < 1.
            norm.total
                .map(|sq| (sq.sqrt().add_scalar(1e-6).recip() * max).clamp_max(1.0))
        });
        self.steps += 1;
        module.map(&mut Tracked::new(Update {
            opt: self,
            grads: &mut grads,
            lr,
            coef,
        }))
    }
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let sq = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + sq,
                None => sq,
            });
        }
    }
}

struct Update<'a> {
    opt: &'a mut AdamW,
    grads: &'a mut GradientsParams,
    lr: f64,
    coef: Option<Tensor<1>>,
}

impl MapAt for Update<'_> {
    fn map_float_at<const D: usize>(
        &mut self,
        at: &ModulePath,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let shape = tensor.dims();
        let n: usize = shape.iter().product();
        let mut g: Tensor<1> = grad.reshape([n]);
        if let Some(c) = &self.coef {
            g = g * c.clone();
        }
        let o = &mut *self.opt;
        let (b1, b2) = (o.beta1, o.beta2);
        let moments = match o.state.remove(&id) {
            Some(s) => Moments {
                m: s.m * b1 + g.clone() * (1.0 - b1),
                v: s.v * b2 + g.square() * (1.0 - b2),
            },
            None => Moments {
                m: g.clone() * (1.0 - b1),
                v: g.square() * (1.0 - b2),
            },
        };
        let t = o.steps as i32;
        let bc1 = 1.0 - b1.powi(t);
        let bc2 = 1.0 - b2.powi(t);
        // HF Trainer's groups: biases and LayerNorm parameters are not decayed.
        let is_bias = at.name() == Some("bias");
        let in_norm = at
            .containers()
            .last()
            .is_some_and(|c| c == "Struct:LayerNorm");
        let decay = if is_bias || in_norm {
            0.0
        } else {
            o.weight_decay
        };
        let mut p: Tensor<1> = tensor.inner().reshape([n]);
        if decay != 0.0 {
            p = p * (1.0 - self.lr * decay);
        }
        let denom = (moments.v.clone().sqrt() / bc2.sqrt()).add_scalar(o.eps);
        p = p - moments.m.clone() / denom * (self.lr / bc1);
        o.state.insert(id, moments);
        let mut updated = Tensor::from_inner(p.reshape(shape));
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_hf() {
        // Warm-up 2 of 10 steps: 0, 0.5, 1, then linear to 0.
        assert_eq!(lr_at(1.0, 0, 2, 10, Schedule::Linear), 0.0);
        assert_eq!(lr_at(1.0, 1, 2, 10, Schedule::Linear), 0.5);
        assert_eq!(lr_at(1.0, 2, 2, 10, Schedule::Linear), 1.0);
        assert!((lr_at(1.0, 6, 2, 10, Schedule::Linear) - 0.5).abs() < 1e-12);
        assert!((lr_at(1.0, 6, 2, 10, Schedule::Cosine) - 0.5).abs() < 1e-12);
        assert_eq!(lr_at(1.0, 9, 0, 10, Schedule::Constant), 1.0);
    }
}
