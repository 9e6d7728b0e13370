//! `temper bench` end to end on the CPU with the tiny preset and tiny case sizes: every case
//! runs, the JSON holds positive finite throughputs and the wall-clock window of each case, the
//! table is printed, bf16 works, the matmul case times burn (cuBLAS n/a on the CPU), and bad
//! settings are clear errors.

mod common;

use common::{stderr, temper};
use serde_json::Value;

const TINY: [&str; 22] = [
    "bench",
    "--device",
    "cpu",
    "--preset",
    "tiny",
    "--prompt-len",
    "12",
    "--new-tokens",
    "4",
    "--batches",
    "1,3",
    "--train-batch",
    "2",
    "--train-len",
    "16",
    "--train-steps",
    "1",
    "--repeats",
    "2",
    "--sampling",
    "sample",
    "--seed=3",
];

fn run_tiny(extra: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let mut args: Vec<&str> = TINY.to_vec();
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--json", json.to_str().unwrap()]);
    let out = temper(&args);
    assert!(out.status.success(), "bench failed: {}", stderr(&out));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (report, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn case<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["case"] == name)
        .unwrap_or_else(|| panic!("no case {name} in {report:#}"))
}

#[test]
fn tiny_bench_runs_every_case_and_writes_json() {
    let (report, stdout) = run_tiny(&[]);
    assert_eq!(report["tool"], "temper");
    assert_eq!(report["dtype"], "f32");
    assert_eq!(report["preset"], "tiny");
    assert!(report["params"].as_u64().unwrap() > 100_000);
    for name in [
        "prefill_b1",
        "prefill_b3",
        "decode_device_greedy_b1",
        "decode_device_greedy_b3",
        "generate_sample_b1",
        "generate_sample_b3",
        "train_2x16",
    ] {
        let c = case(&report, name);
        // Generate's decode rate is a difference of two timings: null if noise wins at this size.
        let rate = c["tokens_per_s"]
            .as_f64()
            .or_else(|| c["e2e_tokens_per_s"].as_f64())
            .unwrap();
        assert!(rate.is_finite() && rate > 0.0, "{name}: tokens/s {rate}");
        let (start, end) = (
            c["start_unix"].as_f64().unwrap(),
            c["end_unix"].as_f64().unwrap(),
        );
        assert!(
            start > 1.0e9 && end >= start,
            "{name}: window {start}..{end}"
        );
        assert!(
            stdout.contains(&format!("| {name} |")),
            "table lacks {name}"
        );
    }
    assert_eq!(case(&report, "prefill_b3")["tokens"], 36);
    assert_eq!(case(&report, "decode_device_greedy_b3")["tokens"], 9);
    let generate = case(&report, "generate_sample_b3");
    assert_eq!(generate["tokens"], 9);
    assert!(generate["total_s"].as_f64().unwrap() > 0.0);
    let train = case(&report, "train_2x16");
    assert_eq!(train["tokens"], 32);
    assert!(train["loss"].as_f64().unwrap().is_finite());
    let sampler = case(&report, "host_sampler");
    assert!(sampler["sample_ms_per_row_token"].as_f64().unwrap() > 0.0);
}

#[test]
fn tiny_bench_in_bf16_selected_cases() {
    let (report, _) = run_tiny(&[
        "--dtype",
        "bf16",
        "--cases",
        "train,prefill,generate",
        "--generate-batches",
        "2",
    ]);
    assert_eq!(report["dtype"], "bf16");
    let names: Vec<&str> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["case"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "train_2x16",
            "prefill_b1",
            "prefill_b3",
            "generate_sample_b2"
        ]
    );
    assert!(
        case(&report, "train_2x16")["loss"]
            .as_f64()
            .unwrap()
            .is_finite()
    );
    assert_eq!(case(&report, "prefill_b3")["finite"], true);
}

#[test]
fn decode_profile_accounts_for_the_pieces_of_a_step() {
    let (report, _) = run_tiny(&["--cases", "decode-profile"]);
    let profile = case(&report, "decode_profile_b3");
    let components = profile["components"].as_object().unwrap();
    assert!(components.len() >= 9, "{components:?}");
    let per_step: f64 = components
        .values()
        .map(|c| c["ms_per_step"].as_f64().unwrap())
        .sum();
    let sum = profile["sum_of_pieces_ms"].as_f64().unwrap();
    assert!((per_step - sum).abs() < 1e-9);
    assert!(sum > 0.0 && profile["decode_step_ms"].as_f64().unwrap() > 0.0);
    assert!(profile["tiny_op_us"].as_f64().unwrap() > 0.0);
}

#[test]
fn tiny_bench_matmul_case_times_burn_and_has_no_cublas_on_the_cpu() {
    let (report, stdout) = run_tiny(&["--cases", "matmul"]);
    // Distinct GEMMs of the tiny decoder at M = 1, 3 (--batches) and 32 (2 × 16, training).
    for m in [1, 3, 32] {
        for gemm in ["q_proj_o_proj", "gate_proj_up_proj", "down_proj", "lm_head"] {
            let c = case(&report, &format!("matmul_{gemm}_m{m}"));
            assert_eq!(c["m"], m);
            assert!(c["burn_us"].as_f64().unwrap() > 0.0, "{c:#}");
            assert!(c["burn_tflops"].as_f64().unwrap() > 0.0);
            assert!(c["cublas_us"].is_null() && c["max_abs_diff"].is_null());
        }
    }
    let head = case(&report, "matmul_lm_head_m1");
    assert_eq!(
        (head["k"].as_u64(), head["n"].as_u64()),
        (Some(64), Some(1024))
    );
    // The tiny fixture's head is untied ([D, V]); the 2B's tied head reads the embedding
    // transposed.
    assert_eq!(head["rhs_transposed"], false);
    let checks = case(&report, "matmul_checks");
    assert_eq!(checks["ran"], false);
    assert!(stdout.contains("| GEMM | M | K | N |"), "{stdout}");
    assert!(stdout.contains("| lm_head | 32 | 64 | 1024 |"), "{stdout}");
}

#[test]
fn bad_bench_settings_are_clear_errors() {
    let out = temper(&["bench", "--preset", "tiny", "--new-tokens", "1"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--new-tokens") && !err.contains("panicked"),
        "{err}"
    );

    let out = temper(&["bench", "--preset", "tiny", "--batches", "0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("batch sizes"), "{}", stderr(&out));
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    let out = temper(&["bench", "--device", "cuda", "--preset", "tiny"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("without CUDA") && !err.contains("panicked"),
        "{err}"
    );
}

/// Issue 11, defect 12: `temper bench` without flags built the 2B model on the CPU and printed
/// `NaN tokens/s` for its first case (the sampler, which has no throughput). On the CPU the
/// default preset is the tiny one, and no number printed or written is NaN.
#[test]
fn bench_defaults_to_the_tiny_preset_on_the_cpu_and_prints_no_nan() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    // The default cases' first one (sampler), at the default sizes, without --preset.
    let out = temper(&[
        "bench",
        "--cases",
        "sampler",
        "--json",
        json.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "bench failed: {err}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["preset"], "tiny");
    assert_eq!(report["shape"]["vocab"], 1024);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for text in [&err, &stdout.to_string()] {
        assert!(!text.contains("NaN") && !text.contains("inf "), "{text}");
    }
    assert!(err.contains("host_sampler: host Sampler::sample"), "{err}");
}
