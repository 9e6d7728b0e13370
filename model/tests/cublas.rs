//! The cuBLAS matmul path on a CUDA device: every layout the model uses (plain 2-D, a weight
//! broadcast over a batch, decode rows, batched rank 4, the tied head's transposed embedding,
//! attention on a KV-cache view, transposed lhs, offset views, broadcast lhs, `linear` with a
//! bias), gradients through `Autodiff<Cuda>`, and a chain that fails if the GEMMs are not
//! ordered with burn's kernels, in f32 and bf16, against a host f64 reference
//! (`temper_model::cublas_check`).
//!
//! `cargo test -p temper-model --release --features cuda,self-checks --test cublas -- --ignored --nocapture`
//! on a machine with a GPU. The prebuilt device bundle runs the same checks through
//! `temper bench --cases matmul` (tools/device/gpu_run.sh, `MODE=cublas`).
#![cfg(all(feature = "cuda", feature = "self-checks"))]

use burn::tensor::FloatDType;
use temper_model::backend::Cuda;
use temper_model::cublas_check::run_checks;
use temper_model::nn::cublas_status;

/// One test, so the global GEMM counters each case reads are not shared with other tests.
#[test]
#[ignore = "needs a CUDA device with libcublas"]
fn cublas_matches_the_reference_on_every_layout() {
    let device = Default::default();
    let results = run_checks::<Cuda>(&device, &[FloatDType::F32, FloatDType::BF16]);
    for r in &results {
        println!(
            "{:<32} {:>5?}  cuBLAS {:>10}  burn {:.2e}  tol {:.0e}  GEMMs {}/{}  {}",
            r.name,
            r.dtype,
            r.cublas_error
                .map_or_else(|| "not run".to_string(), |e| format!("{e:.2e}")),
            r.burn_error,
            r.tolerance,
            r.gemms,
            r.expected_gemms,
            if r.passed() { "ok" } else { "FAIL" }
        );
    }
    println!("{}", cublas_status());
    let failed: Vec<_> = results.iter().filter(|r| !r.passed()).collect();
    assert!(failed.is_empty(), "failed: {failed:#?}");
}
