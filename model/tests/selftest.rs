//! The device self-check (what the app runs in the browser on WebGPU) on the CPU: every fixture's
//! checks pass, and a wrong reference value makes a check fail.

mod common;

use common::*;
use duet_model::device::{block_on, cpu};
use duet_model::selftest::{check_fixture, Kind, FIXTURES, FIXTURE_FILES};
use duet_model::ModelFiles;

fn files(name: &str) -> ModelFiles {
    let mut f = ModelFiles::new();
    for file in FIXTURE_FILES {
        if let Ok(bytes) = std::fs::read(fixture_dir(name).join(file)) {
            f.insert(*file, bytes);
        }
    }
    f
}

#[test]
fn every_fixture_passes_on_the_cpu() {
    every_fixture_passes_on(&cpu());
}

/// The same checks on a native wgpu adapter (with the `wgpu` feature, where
/// `DUET_GPU_TESTS=1`): the WebGPU path's hand-written kernels (`src/kernels/`) against the
/// fixtures, without a browser, with the kernels for a real GPU and then with those for a
/// software adapter. Mesa's lavapipe is enough (`apt-get install mesa-vulkan-drivers`).
#[cfg(feature = "wgpu")]
#[test]
fn every_fixture_passes_on_a_native_gpu() {
    if !gpu_tests_enabled("run the self-check on a wgpu adapter") {
        return;
    }
    let device = burn::tensor::Device::wgpu_options()
        .init()
        .expect("a wgpu adapter");
    for software in [false, true] {
        duet_model::device::set_software_adapter(software);
        every_fixture_passes_on(&device);
    }
    duet_model::device::set_software_adapter(false);
}

fn every_fixture_passes_on(device: &burn::tensor::Device) {
    let mut total = 0;
    for (name, kind) in FIXTURES {
        let checks = block_on(check_fixture(
            name,
            *kind,
            &files(name),
            &expected(name),
            device,
        ));
        assert!(checks.len() >= 3, "{name}: {checks:?}");
        // Every fixture checks attentions; GPT-2's also beam search (5 settings each).
        let named = |prefix: &str| {
            checks
                .iter()
                .filter(|c| c.check.starts_with(prefix))
                .count()
        };
        assert!(named("attentions #") >= 2, "{name}: attentions");
        if *kind == Kind::Gpt2 {
            assert_eq!(named("beam search #"), 5, "{name}: beam search");
        }
        for c in &checks {
            assert!(c.passed, "{c:?}");
        }
        total += checks.len();
    }
    assert!(total > 40, "{total} checks");
}

#[test]
fn a_wrong_reference_fails_its_check() {
    let mut exp = expected("bert-seqcls");
    let logit = &mut exp["encodings"][0]["logits"][0];
    *logit = serde_json::json!(logit.as_f64().unwrap() + 0.01);
    let kind = FIXTURES.iter().find(|f| f.0 == "bert-seqcls").unwrap().1;
    let checks = block_on(check_fixture(
        "bert-seqcls",
        kind,
        &files("bert-seqcls"),
        &exp,
        &cpu(),
    ));
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
    assert_eq!(failed.len(), 1, "{checks:?}");
    assert_eq!(failed[0].check, "padded-batch logits #0");
    // A fixture that cannot load is a failed check, not a panic.
    let broken = ModelFiles::new().with("config.json", b"{}".to_vec());
    let checks = block_on(check_fixture("broken", kind, &broken, &exp, &cpu()));
    assert!(checks.len() == 1 && !checks[0].passed && checks[0].check == "load");
}
