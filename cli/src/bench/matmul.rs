//! `matmul`: burn's matmul against the cuBLAS path (`temper_model::cublas`) on the text
//! decoder's GEMM shapes, at decode rows (`--batches`) and a training batch, in the bench dtype;
//! then the cuBLAS correctness checks (`temper_model::cublas_check`). On the CPU the cuBLAS
//! columns read "n/a".

use super::*;

/// The text decoder's distinct GEMM shapes `(names, K, N, rhs is a transposed view)` for
/// `[M, K] × [K, N]`; projections with equal shapes share a row (`q_proj/o_proj` on the 2B).
fn text_gemm_shapes(config: &Qwen3VlConfig) -> Vec<(String, usize, usize, bool)> {
    let t = &config.text_config;
    let (d, hd) = (t.hidden_size, t.head_dim());
    let (q, kv, inter) = (
        t.num_attention_heads * hd,
        t.num_key_value_heads * hd,
        t.intermediate_size,
    );
    let all = [
        ("q_proj", d, q, false),
        ("k_proj", d, kv, false),
        ("v_proj", d, kv, false),
        ("o_proj", q, d, false),
        ("gate_proj", d, inter, false),
        ("up_proj", d, inter, false),
        ("down_proj", inter, d, false),
        // Tied head: hidden · embed[V, D]ᵀ, the embedding read through a transposed view.
        ("lm_head", d, t.vocab_size, config.tie_word_embeddings),
    ];
    let mut shapes: Vec<(String, usize, usize, bool)> = Vec::new();
    for (name, k, n, transposed) in all {
        match shapes
            .iter_mut()
            .find(|s| (s.1, s.2, s.3) == (k, n, transposed))
        {
            Some(shape) => shape.0 = format!("{}/{name}", shape.0),
            None => shapes.push((name.to_string(), k, n, transposed)),
        }
    }
    shapes
}

/// Median seconds per call of `op` (after two warm-up calls), timed over `repeats` samples of
/// enough back-to-back calls to fill about 2 ms; each sample starts and ends with a device sync
/// and a read of the last output, so work on any stream (cuBLAS's included) is counted. Also
/// returns the warm-up time, the calls per sample and the last output.
fn time_matmul<B: Backend>(
    device: &B::Device,
    repeats: usize,
    mut op: impl FnMut() -> Tensor<B, 2>,
) -> Result<(f64, f64, usize, Tensor<B, 2>)> {
    let settle = |out: &Tensor<B, 2>| -> Result<()> {
        first_value(out.clone());
        sync::<B>(device)
    };
    let warm = Instant::now();
    drop(op());
    let mut out = op();
    settle(&out)?;
    let warmup_s = warm.elapsed().as_secs_f64();
    let start = Instant::now();
    out = op();
    settle(&out)?;
    let one = start.elapsed().as_secs_f64();
    let iters = ((2e-3 / one.max(1e-7)).ceil() as usize).clamp(1, 200);
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        settle(&out)?;
        let start = Instant::now();
        for _ in 0..iters {
            out = op();
        }
        settle(&out)?;
        times.push(start.elapsed().as_secs_f64() / iters as f64);
    }
    Ok((median(&times), warmup_s, iters, out))
}

/// One row of the matmul table.
struct MatmulRow {
    label: String,
    m: usize,
    k: usize,
    n: usize,
    burn_s: f64,
    cublas_s: Option<f64>,
    max_abs_diff: Option<f64>,
}

pub(super) fn matmul_case<B: Backend>(
    config: &Qwen3VlConfig,
    args: &BenchArgs,
    device: &B::Device,
    report: &mut Report,
) -> Result<()> {
    use burn::tensor::{Distribution, FloatDType};
    use temper_model::cublas_check::run_checks;
    use temper_model::nn::{cublas_matmul, cublas_status};

    let dtype = match args.dtype {
        Dtype::F32 => FloatDType::F32,
        Dtype::Bf16 => FloatDType::BF16,
    };
    let elem_bytes = match args.dtype {
        Dtype::F32 => 4.0,
        Dtype::Bf16 => 2.0,
    };
    let mut rows_m: Vec<usize> = args.batches.clone();
    let train_rows = args.train_batch * args.train_len;
    if train_rows > 0 && !rows_m.contains(&train_rows) {
        rows_m.push(train_rows);
    }
    let repeats = args.repeats.max(3);
    let mut table = Vec::new();
    for (label, k, n, transposed) in text_gemm_shapes(config) {
        // Weights of the model's scale; the tied head is stored [V, D] and read transposed.
        let uniform = Distribution::Uniform(-0.05, 0.05);
        let weight = if transposed {
            Tensor::<B, 2>::random([n, k], uniform, device)
                .cast(dtype)
                .transpose()
        } else {
            Tensor::<B, 2>::random([k, n], uniform, device).cast(dtype)
        };
        for &m in &rows_m {
            let start_unix = now_unix();
            let x = Tensor::<B, 2>::random([m, k], Distribution::Uniform(-1.0, 1.0), device)
                .cast(dtype);
            let (burn_s, burn_warm, burn_iters, burn_out) =
                time_matmul::<B>(device, repeats, || x.clone().matmul(weight.clone()))?;
            let cublas_works = cublas_matmul(x.clone(), weight.clone()).is_some();
            let cublas = if cublas_works {
                let (secs, warm, iters, out) = time_matmul::<B>(device, repeats, || {
                    cublas_matmul(x.clone(), weight.clone()).expect("cuBLAS ran just before")
                })?;
                let diff = (burn_out.clone() - out).abs().max();
                Some((secs, warm, iters, first_f64(diff)))
            } else {
                None
            };
            let max_abs_burn = first_f64(burn_out.abs().max());
            let flops = 2.0 * (m * k * n) as f64;
            let weight_bytes = (k * n) as f64 * elem_bytes;
            let cublas_s = cublas.map(|c| c.0);
            let seconds = cublas_s.unwrap_or(burn_s);
            report.push(json!({
                "case": format!("matmul_{}_m{m}", label.replace('/', "_")),
                "kind": "matmul",
                "gemm": label,
                "m": m, "k": k, "n": n,
                "rhs_transposed": transposed,
                "dtype": format!("{:?}", args.dtype).to_lowercase(),
                "burn_us": burn_s * 1e6,
                "cublas_us": cublas_s.map(|s| s * 1e6),
                "burn_tflops": flops / burn_s * 1e-12,
                "cublas_tflops": cublas_s.map(|s| flops / s * 1e-12),
                "burn_weight_gbps": weight_bytes / burn_s * 1e-9,
                "cublas_weight_gbps": cublas_s.map(|s| weight_bytes / s * 1e-9),
                "cublas_over_burn": cublas_s.map(|s| burn_s / s),
                "max_abs_diff": cublas.map(|c| c.3),
                "max_abs_burn": max_abs_burn,
                "burn_calls_per_sample": burn_iters,
                "cublas_calls_per_sample": cublas.map(|c| c.2),
                "tokens": m,
                "seconds": seconds,
                "tokens_per_s": m as f64 / seconds,
                "warmup_s": burn_warm + cublas.map_or(0.0, |c| c.1),
                "notes": match cublas_s {
                    Some(s) => format!(
                        "[{m},{k}]x[{k},{n}] burn {:.1} us, cuBLAS {:.1} us ({:.2}x)",
                        burn_s * 1e6, s * 1e6, burn_s / s
                    ),
                    None => format!("[{m},{k}]x[{k},{n}] burn {:.1} us, cuBLAS n/a", burn_s * 1e6),
                },
                "start_unix": start_unix,
                "end_unix": now_unix(),
            }))?;
            table.push(MatmulRow {
                label: label.clone(),
                m,
                k,
                n,
                burn_s,
                cublas_s,
                max_abs_diff: cublas.map(|c| c.3),
            });
            B::memory_cleanup(device);
        }
    }
    print_matmul_table(&table, elem_bytes);

    // Correctness: f32 and bf16 layouts and gradients, only where cuBLAS exists.
    let start_unix = now_unix();
    let has_cublas = table.iter().any(|r| r.cublas_s.is_some());
    let checks = if has_cublas {
        run_checks::<B>(device, &[FloatDType::F32, FloatDType::BF16])
    } else {
        Vec::new()
    };
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed())
        .map(|c| format!("{}/{:?}", c.name, c.dtype))
        .collect();
    print_check_table(&checks, has_cublas);
    let status = cublas_status();
    println!("cuBLAS: {status}");
    report.push(json!({
        "case": "matmul_checks",
        "kind": "matmul_checks",
        "ran": has_cublas,
        "passed": has_cublas && failed.is_empty(),
        "failed": failed,
        "cublas_status": status,
        "checks": checks.iter().map(|c| json!({
            "name": c.name,
            "dtype": format!("{:?}", c.dtype).to_lowercase(),
            "cublas_rel_error": c.cublas_error,
            "burn_rel_error": c.burn_error,
            "tolerance": c.tolerance,
            "scale": c.scale,
            "gemms": c.gemms,
            "expected_gemms": c.expected_gemms,
            "passed": c.passed(),
        })).collect::<Vec<_>>(),
        "notes": if !has_cublas {
            "cuBLAS checks skipped: no cuBLAS on this backend".to_string()
        } else if failed.is_empty() {
            format!("{} cuBLAS checks passed", checks.len())
        } else {
            format!("cuBLAS checks FAILED: {}", failed.join(", "))
        },
        "start_unix": start_unix,
        "end_unix": now_unix(),
    }))?;
    ensure!(
        failed.is_empty(),
        "cuBLAS checks failed: {} (see the table above)",
        failed.join(", ")
    );
    Ok(())
}

/// A scalar tensor's value (e.g. a `max()`), as f64.
fn first_f64<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_or(f64::NAN, |v| v.first().copied().map_or(f64::NAN, f64::from))
}

fn print_matmul_table(rows: &[MatmulRow], elem_bytes: f64) {
    let na = || "n/a".to_string();
    println!(
        "\n| GEMM | M | K | N | burn µs | cuBLAS µs | burn TFLOP/s | cuBLAS TFLOP/s | burn weight GB/s | cuBLAS weight GB/s | cuBLAS/burn speed | max abs diff |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let flops = 2.0 * (r.m * r.k * r.n) as f64;
        let bytes = (r.k * r.n) as f64 * elem_bytes;
        println!(
            "| {} | {} | {} | {} | {:.1} | {} | {:.2} | {} | {:.0} | {} | {} | {} |",
            r.label,
            r.m,
            r.k,
            r.n,
            r.burn_s * 1e6,
            r.cublas_s.map_or_else(na, |s| format!("{:.1}", s * 1e6)),
            flops / r.burn_s * 1e-12,
            r.cublas_s
                .map_or_else(na, |s| format!("{:.2}", flops / s * 1e-12)),
            bytes / r.burn_s * 1e-9,
            r.cublas_s
                .map_or_else(na, |s| format!("{:.0}", bytes / s * 1e-9)),
            r.cublas_s
                .map_or_else(na, |s| format!("{:.2}x", r.burn_s / s)),
            r.max_abs_diff.map_or_else(na, |d| format!("{d:.3e}")),
        );
    }
}

fn print_check_table(checks: &[temper_model::cublas_check::CheckResult], ran: bool) {
    if !ran {
        println!("\ncuBLAS checks: skipped (no cuBLAS on this backend)");
        return;
    }
    println!("\n| check | dtype | cuBLAS rel err | burn rel err | tolerance | GEMMs | result |");
    println!("|---|---|---|---|---|---|---|");
    for c in checks {
        println!(
            "| {} | {:?} | {} | {:.2e} | {:.0e} | {}/{} | {} |",
            c.name,
            c.dtype,
            c.cublas_error
                .map_or_else(|| "did not run".to_string(), |e| format!("{e:.2e}")),
            c.burn_error,
            c.tolerance,
            c.gemms,
            c.expected_gemms,
            if c.passed() { "ok" } else { "FAIL" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_case_covers_the_2b_decoder_gemms() {
        let shapes = text_gemm_shapes(&preset_config(Preset::TwoB).unwrap());
        let expected = [
            ("q_proj/o_proj", 2048, 2048, false),
            ("k_proj/v_proj", 2048, 1024, false),
            ("gate_proj/up_proj", 2048, 6144, false),
            ("down_proj", 6144, 2048, false),
            ("lm_head", 2048, 151_936, true),
        ];
        let got: Vec<(&str, usize, usize, bool)> = shapes
            .iter()
            .map(|(name, k, n, t)| (name.as_str(), *k, *n, *t))
            .collect();
        assert_eq!(got, expected);
    }
}
