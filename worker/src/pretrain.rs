//! The Pretrain page's run: a fresh GPT and a fresh BERT trained side by side on one text, each
//! step's two losses and every few steps a GPT continuation and a BERT fill streamed back. The
//! models stay here between runs, so a stopped run can go on, and either can be downloaded.

use duet_model::train::export::{self, DType};
use duet_model::train::scratch::Shape;
use duet_model::train::side_by_side::{Pair, PairConfig, Probe};
use duet_protocol::{PretrainParams, Reply};

use crate::messages::{is_cancelled, now_s, post};
use crate::state::{self, Pretraining, STATE};

/// New tokens in each GPT sample.
const SAMPLE_TOKENS: usize = 32;
/// Steps of learning-rate warm-up at the start of a run.
const WARMUP_STEPS: usize = 10;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The page's probe where it set one, else `fallback` (chosen from the text).
fn probe(p: &PretrainParams, fallback: Probe) -> Result<Probe, String> {
    let mut probe = fallback;
    if !p.prompt.trim().is_empty() {
        probe.prompt = p.prompt.trim().to_string();
    }
    if !p.masked.trim().is_empty() {
        if p.masked.matches("[MASK]").count() != 1 {
            return Err(format!(
                "BERT's sentence needs exactly one [MASK] (it has {}): e.g. \"{}\"",
                p.masked.matches("[MASK]").count(),
                probe.masked
            ));
        }
        probe.masked = p.masked.trim().to_string();
    }
    Ok(probe)
}

pub async fn pretrain(id: u32, p: PretrainParams, resume: bool) -> Result<Reply, String> {
    crate::settings::pretrain(&p, resume)?;
    let (mut pair, probe) = if resume {
        let stored = STATE
            .with(|s| s.borrow().pretraining.as_ref().map(|t| t.probe.clone()))
            .ok_or("there is no run to continue: start one first (or it is still running)")?;
        // Checked before the models are taken out, so a bad sentence leaves them in place.
        let probe = probe(&p, stored)?;
        let taken = STATE.with(|s| s.borrow_mut().pretraining.take());
        (taken.expect("checked above").pair, probe)
    } else {
        if p.text.trim().is_empty() {
            return Err("there is no text: paste or upload some (a few pages at least)".into());
        }
        let probe = probe(&p, Probe::from_text(&p.text).map_err(err)?)?;
        let config = PairConfig {
            shape: Shape {
                n_layer: p.n_layer,
                n_head: p.n_head,
                n_embd: p.n_embd,
                n_positions: p.block_size,
                dropout: 0.1,
            },
            vocab_size: p.vocab_size,
            batch_size: p.batch_size,
            learning_rate: p.learning_rate,
            warmup_steps: WARMUP_STEPS,
            seed: p.seed,
        };
        let pair = Pair::new(&p.text, &config, &state::device()?).map_err(err)?;
        (pair, probe)
    };
    // Whatever happens next, the models go back where Continue and Download find them.
    let outcome = run(id, &mut pair, &probe, &p).await;
    let steps = pair.steps;
    STATE.with(|s| s.borrow_mut().pretraining = Some(Pretraining { pair, probe }));
    Ok(Reply::Pretrained {
        steps,
        cancelled: outcome?,
    })
}

/// Steps until `p.steps` more are done or Stop; true when stopped.
async fn run(id: u32, pair: &mut Pair, probe: &Probe, p: &PretrainParams) -> Result<bool, String> {
    let from = pair.steps;
    // Both at least 1 (`settings::pretrain`).
    let total = from + p.steps;
    let every = p.sample_every;
    post(
        id,
        Reply::PretrainStarted {
            gpt_parameters: pair.gpt.parameters(),
            bert_parameters: pair.bert.parameters(),
            gpt_vocab: pair.gpt.vocab_size(),
            bert_vocab: pair.bert.vocab_size(),
            gpt_blocks: pair.gpt.blocks(),
            bert_blocks: pair.bert.blocks(),
            prompt: probe.prompt.clone(),
            masked: probe.masked.clone(),
            from_step: from,
            total_steps: total,
        },
    );
    if from == 0 {
        // What the untrained models make of it: the baseline the class compares with.
        sample(id, pair, probe).await?;
    }
    let start = now_s();
    let mut cancelled = false;
    while pair.steps < total {
        duet_model::device::yield_now().await;
        if is_cancelled(id) {
            cancelled = true;
            break;
        }
        let (gpt_loss, bert_loss) = pair.step().await.map_err(err)?;
        post(
            id,
            Reply::PretrainStep {
                step: pair.steps,
                total_steps: total,
                gpt_loss,
                bert_loss,
                elapsed_s: now_s() - start,
            },
        );
        if pair.steps.is_multiple_of(every) {
            sample(id, pair, probe).await?;
        }
    }
    if !pair.steps.is_multiple_of(every) && pair.steps > from {
        sample(id, pair, probe).await?;
    }
    Ok(cancelled)
}

/// Posts what both models make of the probe now.
async fn sample(id: u32, pair: &Pair, probe: &Probe) -> Result<(), String> {
    let s = pair.sample(probe, SAMPLE_TOKENS).await.map_err(err)?;
    post(
        id,
        Reply::PretrainSample {
            step: pair.steps,
            gpt_text: s.gpt_text,
            bert_fills: s.bert_fills,
        },
    );
    Ok(())
}

/// One of the last run's models as a full checkpoint (`which`: `gpt` or `bert`).
pub async fn export(which: &str) -> Result<duet_model::ModelFiles, String> {
    let model = STATE
        .with(|s| {
            s.borrow().pretraining.as_ref().map(|t| match which {
                "gpt" => t.pair.gpt.current(),
                _ => t.pair.bert.current(),
            })
        })
        .ok_or("nothing was pretrained yet, or the run is still going: stop it first")?;
    export::full_checkpoint(&model, DType::F32)
        .await
        .map_err(err)
}
