//! LoRA on the projections of any architecture: attaching adapters to the modules PEFT's
//! `target_modules` name, listing them with their HF paths (for export), and merging them.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{DuetError, Result};
use crate::network::Network;
use crate::nn::{Conv1D, Linear, Lora};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f64,
    /// Module names as PEFT matches them: a projection is targeted when its path ends with one.
    pub target_modules: Vec<String>,
}

impl LoraConfig {
    /// PEFT's defaults per architecture (`query`/`value`, `q_lin`/`v_lin`, `c_attn`).
    pub fn defaults_for(net: &Network) -> Self {
        let targets: &[&str] = match net {
            Network::Gpt2(_) => &["c_attn"],
            Network::Bert(_) => &["query", "value"],
            Network::DistilBert(_) => &["q_lin", "v_lin"],
        };
        Self {
            rank: 8,
            alpha: 16.0,
            dropout: 0.05,
            target_modules: targets.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A projection of the network, whichever layer type holds it.
pub enum Projection<'a> {
    Linear(&'a mut Linear),
    Conv1D(&'a mut Conv1D),
}

impl Projection<'_> {
    pub fn lora(&mut self) -> &mut Option<Lora> {
        match self {
            Projection::Linear(l) => &mut l.lora,
            Projection::Conv1D(c) => &mut c.lora,
        }
    }

    pub fn lora_ref(&self) -> Option<&Lora> {
        match self {
            Projection::Linear(l) => l.lora.as_ref(),
            Projection::Conv1D(c) => c.lora.as_ref(),
        }
    }

    /// `[in, out]`.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Projection::Linear(l) => l.dims(),
            Projection::Conv1D(c) => c.dims(),
        }
    }

    /// Folds the adapter into the weight and removes it.
    fn merge(&mut self) {
        let (weight, lora) = match self {
            Projection::Linear(l) => (&mut l.weight, l.lora.take()),
            Projection::Conv1D(c) => (&mut c.weight, c.lora.take()),
        };
        if let Some(lora) = lora {
            let delta = lora.delta();
            *weight = weight.clone().map(|w| w + delta);
        }
    }
}

/// Every projection with its HF module path (`bert.encoder.layer.0.attention.self.query`).
pub fn projections(net: &mut Network) -> Vec<(String, Projection<'_>)> {
    let mut out: Vec<(String, Projection<'_>)> = Vec::new();
    match net {
        Network::Gpt2(m) => {
            for (i, b) in m.transformer.h.iter_mut().enumerate() {
                let p = format!("transformer.h.{i}");
                out.push((
                    format!("{p}.attn.c_attn"),
                    Projection::Conv1D(&mut b.attn.c_attn),
                ));
                out.push((
                    format!("{p}.attn.c_proj"),
                    Projection::Conv1D(&mut b.attn.c_proj),
                ));
                out.push((format!("{p}.mlp.c_fc"), Projection::Conv1D(&mut b.mlp.c_fc)));
                out.push((
                    format!("{p}.mlp.c_proj"),
                    Projection::Conv1D(&mut b.mlp.c_proj),
                ));
            }
        }
        Network::Bert(m) => {
            for (i, l) in m.bert.encoder.layer.iter_mut().enumerate() {
                let p = format!("bert.encoder.layer.{i}");
                let s = &mut l.attention.self_;
                out.push((
                    format!("{p}.attention.self.query"),
                    Projection::Linear(&mut s.query),
                ));
                out.push((
                    format!("{p}.attention.self.key"),
                    Projection::Linear(&mut s.key),
                ));
                out.push((
                    format!("{p}.attention.self.value"),
                    Projection::Linear(&mut s.value),
                ));
                out.push((
                    format!("{p}.attention.output.dense"),
                    Projection::Linear(&mut l.attention.output.dense),
                ));
                out.push((
                    format!("{p}.intermediate.dense"),
                    Projection::Linear(&mut l.intermediate.dense),
                ));
                out.push((
                    format!("{p}.output.dense"),
                    Projection::Linear(&mut l.output.dense),
                ));
            }
        }
        Network::DistilBert(m) => {
            for (i, l) in m.distilbert.transformer.layer.iter_mut().enumerate() {
                let p = format!("distilbert.transformer.layer.{i}");
                let a = &mut l.attention;
                out.push((
                    format!("{p}.attention.q_lin"),
                    Projection::Linear(&mut a.q_lin),
                ));
                out.push((
                    format!("{p}.attention.k_lin"),
                    Projection::Linear(&mut a.k_lin),
                ));
                out.push((
                    format!("{p}.attention.v_lin"),
                    Projection::Linear(&mut a.v_lin),
                ));
                out.push((
                    format!("{p}.attention.out_lin"),
                    Projection::Linear(&mut a.out_lin),
                ));
                out.push((format!("{p}.ffn.lin1"), Projection::Linear(&mut l.ffn.lin1)));
                out.push((format!("{p}.ffn.lin2"), Projection::Linear(&mut l.ffn.lin2)));
            }
        }
    }
    out
}

fn targeted(path: &str, targets: &[String]) -> bool {
    targets
        .iter()
        .any(|t| path == t || path.ends_with(&format!(".{t}")))
}

/// Adds fresh adapters to the targeted projections; returns how many.
pub fn attach(net: &mut Network, cfg: &LoraConfig, device: &Device) -> Result<usize> {
    if cfg.rank == 0 {
        return Err(DuetError::InvalidOption(
            "LoRA rank must be at least 1".into(),
        ));
    }
    let mut n = 0;
    for (path, mut proj) in projections(net) {
        if targeted(&path, &cfg.target_modules) {
            let [d_in, d_out] = proj.dims();
            *proj.lora() = Some(Lora::new(
                d_in,
                d_out,
                cfg.rank,
                cfg.alpha,
                cfg.dropout,
                device,
            ));
            n += 1;
        }
    }
    if n == 0 {
        return Err(DuetError::InvalidOption(format!(
            "no module matches LoRA target_modules {:?}",
            cfg.target_modules
        )));
    }
    Ok(n)
}

/// Folds every adapter into its weight (PEFT's `merge_and_unload`).
pub fn merge(mut net: Network) -> Network {
    for (_, mut proj) in projections(&mut net) {
        proj.merge();
    }
    net
}

/// Whether any projection carries an adapter.
pub fn has_lora(net: &mut Network) -> bool {
    projections(net).iter().any(|(_, p)| p.lora_ref().is_some())
}
