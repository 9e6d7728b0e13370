//! User JSONL datasets: records load into the expected prompts (text, image and video parts,
//! string content, system message), every kind of bad record is logged with its line while a
//! short run completes, a file with no usable record is an error before any work, the epoch
//! order is seeded and new every epoch, and a resumed run reads the same prompts as an
//! uninterrupted one.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use image::{Rgb, RgbImage};
use serde_json::{Value, json};
use temper_learner::data::dataset::{DatasetOptions, DatasetTask};
use temper_learner::data::order::{epoch_order, locate};
use temper_learner::embedded;
use temper_learner::tasks::task::{Split, Task};
use temper_learner::train::{
    DATA_ERRORS_FILE, Observer, Outcome, Progress, Silent, TrainConfig, TrainError, Trainer,
};
use temper_model::Qwen3Vl;
use temper_model::backend::{Cpu, CpuAutodiff};
use temper_model::chat::ContentPart;
use temper_model::processor::Processor;
use temper_rewards::{RolloutError, RolloutRequest, RolloutSource, Rollouts};

fn processor() -> Processor {
    embedded::tiny_processor(&embedded::tiny_config()).unwrap()
}

fn solid(dir: &Path, name: &str, colour: [u8; 3]) -> RgbImage {
    let image = RgbImage::from_pixel(32, 32, Rgb(colour));
    image.save(dir.join(name)).unwrap();
    image
}

fn write_jsonl(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn text_record(id: &str, question: &str, answer: &str) -> String {
    json!({"id": id, "messages": [{"role": "user", "content": question}], "answer": answer})
        .to_string()
}

fn open(train: &Path, eval: Option<&Path>, log: &Path, max: usize) -> Result<DatasetTask, String> {
    let options = DatasetOptions {
        train,
        eval,
        shuffle: false,
        max_prompt_tokens: max,
        error_log: log,
    };
    DatasetTask::open(&options, &processor()).map_err(|e| e.to_string())
}

#[test]
fn text_image_and_video_parts_load_into_the_expected_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("imgs")).unwrap();
    std::fs::create_dir_all(d.join("clip")).unwrap();
    let red = solid(d, "imgs/red.png", [200, 10, 10]);
    let f0 = solid(d, "clip/000.png", [0, 0, 200]);
    let f1 = solid(d, "clip/001.png", [0, 200, 0]);
    let abs = d.join("abs.png");
    let green = solid(d, "abs.png", [10, 200, 10]);
    let lines = vec![
        json!({"id": "q1", "source": "toy", "system": "Be brief.",
               "messages": [{"role": "user", "content": [
                   {"type": "image", "image": "imgs/red.png"},
                   {"type": "text", "text": "What colour?"}]}],
               "answer": "red", "metadata": {"k": 1}, "tools": ["calculator"]})
        .to_string(),
        json!({"id": "q2", "messages": [{"role": "user", "content": [
                   {"type": "video", "video": ["clip/000.png", "clip/001.png"], "fps": 4.0},
                   {"type": "image", "image": format!("file://{}", abs.display())},
                   {"type": "text", "text": "Which came first?"}]}],
               "answer": "blue"})
        .to_string(),
        json!({"id": "q3", "messages": [{"role": "user", "content": [
                   {"type": "video", "video": "clip"}, {"type": "text", "text": "Frames?"}]}],
               "answer": "2"})
        .to_string(),
        text_record("q4", "Two plus two?", "4"),
    ];
    write_jsonl(&d.join("train.jsonl"), &lines);
    let task = open(&d.join("train.jsonl"), None, &d.join("errors.jsonl"), 1000).unwrap();
    assert_eq!(task.len(Split::Train), Some(4));
    assert_eq!(task.skipped(), Some(0));

    let p = task.prompt(0, Split::Train, 0).unwrap();
    assert_eq!(p.id, "q1");
    assert_eq!(p.messages.len(), 2, "the system message comes first");
    assert_eq!(p.messages[0].role, "system");
    assert_eq!(
        p.messages[1].content,
        vec![ContentPart::Image, ContentPart::text("What colour?")]
    );
    assert_eq!(p.images, vec![red]);
    assert_eq!(p.reference.as_deref(), Some("red"));
    assert_eq!(p.metadata, Some(json!({"k": 1})));
    assert_eq!(p.tools, vec!["calculator".to_string()]);
    assert_eq!(p.text, "What colour?");

    let p = task.prompt(0, Split::Train, 1).unwrap();
    assert_eq!(
        p.messages[0].content,
        vec![
            ContentPart::Video,
            ContentPart::Image,
            ContentPart::text("Which came first?")
        ]
    );
    assert_eq!(p.videos.len(), 1);
    assert_eq!(p.videos[0].frames, vec![f0.clone(), f1.clone()]);
    assert_eq!(p.videos[0].fps, 4.0);
    assert_eq!(p.images, vec![green]);

    let p = task.prompt(0, Split::Train, 2).unwrap();
    assert_eq!(
        p.videos[0].frames,
        vec![f0, f1],
        "a folder's frames, sorted by name"
    );
    assert_eq!(p.videos[0].fps, 2.0);

    let p = task.prompt(0, Split::Train, 3).unwrap();
    assert_eq!(
        p.messages[0].content,
        vec![ContentPart::text("Two plus two?")]
    );
    assert!(p.images.is_empty() && p.videos.is_empty());
    // Past the end: the next epoch (file order without shuffle).
    assert_eq!(task.prompt(0, Split::Train, 4).unwrap().id, "q1");
    assert_eq!(std::fs::read_to_string(d.join("errors.jsonl")).unwrap(), "");
}

#[test]
fn the_epoch_order_is_seeded_and_new_every_epoch() {
    let n = 50;
    let e0 = epoch_order(n, 7, 0, true);
    let e1 = epoch_order(n, 7, 1, true);
    assert_eq!(
        e0,
        epoch_order(n, 7, 0, true),
        "same seed and epoch: same order"
    );
    assert_ne!(e0, e1, "a new order every epoch");
    assert_ne!(
        e0,
        epoch_order(n, 8, 0, true),
        "another seed: another order"
    );
    let mut sorted = e1.clone();
    sorted.sort();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "a permutation");
    assert_eq!(epoch_order(n, 7, 3, false), (0..n).collect::<Vec<_>>());
    assert_eq!(locate(0, 50), (0, 0));
    assert_eq!(locate(123, 50), (2, 23));
}

/// A config with the tiny model, a short schedule and `[data]` instead of `[task]`.
fn data_config(train: &Path, eval: &Path, extra: &[&str]) -> TrainConfig {
    let tiny =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tiny.toml"))
            .unwrap();
    // Drop the `[task]` table: everything from its header to the next blank line.
    let mut text = String::new();
    let mut in_task = false;
    for line in tiny.lines() {
        if line.starts_with("[task]") {
            in_task = true;
        } else if in_task && line.trim().is_empty() {
            in_task = false;
        }
        if !in_task {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str(&format!(
        "\n[data]\ntrain = {:?}\neval = {:?}\nmax_prompt_tokens = 200\n",
        train.display().to_string(),
        eval.display().to_string()
    ));
    let overrides: Vec<String> = [
        "sft.steps=2",
        "sft.batch_size=2",
        "rl.steps=3",
        "rl.prompts_per_step=2",
        "rl.group_size=2",
        "rl.eval_every=0",
        "rl.dynamic_sampling.max_rounds=1",
        "eval.examples=2",
        "eval.batch_size=2",
        "checkpoint.every=1",
        "checkpoint.keep=10",
        "sft.optim.warmup_steps=1",
        "rl.optim.warmup_steps=1",
        "seed=3",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    TrainConfig::from_toml_str(&text, "data.toml", &overrides).unwrap()
}

/// Writes a dataset whose train file has one bad record of every kind among good ones.
fn dataset_with_bad_records(d: &Path) -> (PathBuf, PathBuf) {
    solid(d, "ok.png", [100, 100, 100]);
    std::fs::write(d.join("broken.png"), b"not a png").unwrap();
    let long = "word ".repeat(60);
    let lines = vec![
        text_record("a", "First?", "1"),
        "{not json".to_string(),
        json!({"id": "nomsg", "answer": "1"}).to_string(),
        json!({"id": "missing", "messages": [{"role": "user", "content": [
            {"type": "image", "image": "gone.png"}, {"type": "text", "text": "?"}]}],
            "answer": "1"})
        .to_string(),
        json!({"id": "unreadable", "messages": [{"role": "user", "content": [
            {"type": "image", "image": "broken.png"}, {"type": "text", "text": "?"}]}],
            "answer": "1"})
        .to_string(),
        text_record("long", &long, "1"),
        json!({"id": "tool", "messages": [{"role": "user", "content": "Zap?"}],
            "answer": "1", "tools": ["laser"]})
        .to_string(),
        json!({"id": "img", "messages": [{"role": "user", "content": [
            {"type": "image", "image": "ok.png"}, {"type": "text", "text": "Grey?"}]}],
            "answer": "1"})
        .to_string(),
        text_record("b", "Second?", "2"),
        text_record("c", "Third?", "3"),
    ];
    let train = d.join("train.jsonl");
    write_jsonl(&train, &lines);
    let eval = d.join("eval.jsonl");
    write_jsonl(
        &eval,
        &[
            text_record("e1", "Eval one?", "1"),
            text_record("e2", "Eval two?", "2"),
        ],
    );
    (train, eval)
}

#[test]
fn every_bad_record_is_logged_with_its_line_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (train, eval) = dataset_with_bad_records(dir.path());
    let config = data_config(&train, &eval, &[]);
    let run_dir = dir.path().join("run");
    common::train_to_end(config, &run_dir);

    let log = std::fs::read_to_string(run_dir.join(DATA_ERRORS_FILE)).unwrap();
    let entries: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<u64> = entries
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7], "{log}");
    let expect = [
        (Value::Null, "not a valid record"),
        (Value::Null, "missing field `messages`"),
        (json!("missing"), "gone.png"),
        (json!("unreadable"), "broken.png"),
        (json!("long"), "max_prompt_tokens = 200"),
        (json!("tool"), "unknown tool `laser`"),
    ];
    for (entry, (id, needle)) in entries.iter().zip(expect) {
        assert_eq!(entry["file"], json!(train.display().to_string()));
        assert_eq!(entry["id"], id, "{entry}");
        let error = entry["error"].as_str().unwrap();
        assert!(error.contains(needle), "{error} should contain {needle}");
    }
    let records = common::metrics_records(&run_dir);
    let steps: Vec<_> = records
        .iter()
        .filter(|r| r["stage"] == "sft" || r["stage"] == "rl")
        .collect();
    assert_eq!(steps.len(), 5);
    assert!(steps.iter().all(|r| r["data/skipped"] == json!(6)));
    assert!(run_dir.join("summary.json").is_file());
}

#[test]
fn a_file_without_a_usable_record_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = d.join("bad.jsonl");
    write_jsonl(&bad, &["{".into(), json!({"answer": "1"}).to_string()]);
    let err = open(&bad, None, &d.join("errors.jsonl"), 100).unwrap_err();
    assert!(
        err.contains("bad.jsonl") && err.contains("no usable record") && err.contains("2 bad"),
        "{err}"
    );
    // Through the trainer: before any work (no metrics written).
    let good = d.join("good.jsonl");
    write_jsonl(
        &good,
        &[text_record("a", "A?", "1"), text_record("b", "B?", "2")],
    );
    let config = data_config(&good, &bad, &[]);
    let run_dir = d.join("run");
    let result = Trainer::<CpuAutodiff>::new(
        config,
        &run_dir,
        false,
        Default::default(),
        Arc::default(),
        Box::new(Silent),
    );
    let Err(TrainError::Data(e)) = result else {
        panic!("a data error expected");
    };
    assert!(e.to_string().contains("bad.jsonl"), "{e}");
    assert_eq!(
        std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap_or_default(),
        ""
    );
}

#[test]
fn a_run_needs_a_task_or_a_dataset_but_not_both() {
    let dir = tempfile::tempdir().unwrap();
    let (train, eval) = dataset_with_bad_records(dir.path());
    let config = data_config(&train, &eval, &[]);
    let mut text = config.to_toml();
    text.push_str("\n[task]\nkind = \"shapes\"\n");
    let err = TrainConfig::from_toml_str(&text, "both.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("task and data"), "{err}");
    // Without the `[data]` table (its header to the next table).
    let mut in_data = false;
    let text: String = config
        .to_toml()
        .lines()
        .filter(|l| {
            if l.starts_with('[') {
                in_data = *l == "[data]";
            }
            !in_data
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let err = TrainConfig::from_toml_str(&text, "neither.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("task or data"), "{err}");
    let text: String = config
        .to_toml()
        .lines()
        .filter(|l| !l.starts_with("eval = "))
        .map(|l| format!("{l}\n"))
        .collect();
    let err = TrainConfig::from_toml_str(&text, "noeval.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("data.eval"), "{err}");
}

#[test]
fn relative_data_paths_resolve_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (train, eval) = dataset_with_bad_records(d);
    let text = data_config(&train, &eval, &[])
        .to_toml()
        .replace(
            &format!("{:?}", train.display().to_string()),
            "\"train.jsonl\"",
        )
        .replace(
            &format!("{:?}", eval.display().to_string()),
            "\"eval.jsonl\"",
        );
    assert!(text.contains("\"train.jsonl\""), "{text}");
    let path = d.join("run.toml");
    std::fs::write(&path, text).unwrap();
    let config = TrainConfig::load(&path, &[]).unwrap();
    let data = config.data.unwrap();
    assert_eq!(data.train, std::path::absolute(&train).unwrap());
    assert_eq!(data.eval, Some(std::path::absolute(&eval).unwrap()));
}

/// Records the prompt texts of every RL request, then delegates.
struct Recording<S> {
    inner: S,
    texts: Arc<Mutex<Vec<String>>>,
}

impl<S: RolloutSource<Cpu>> RolloutSource<Cpu> for Recording<S> {
    fn next_groups(
        &mut self,
        policy: &Qwen3Vl<Cpu>,
        processor: &Processor,
        request: &RolloutRequest<'_>,
    ) -> Result<Rollouts, RolloutError> {
        if request.group_size > 1 {
            let mut texts = self.texts.lock().unwrap();
            texts.extend(request.prompts.iter().map(|p| p.text.clone()));
        }
        self.inner.next_groups(policy, processor, request)
    }
}

/// Raises the stop flag after the first RL step.
struct StopAfterFirstRl(Arc<AtomicBool>);

impl Observer for StopAfterFirstRl {
    fn advance(&mut self, progress: Progress<'_>) {
        if let Progress::Step(record) = progress
            && record.stage() == "rl"
        {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

fn run(
    config: TrainConfig,
    run_dir: &Path,
    resume: bool,
    observer: Box<dyn Observer>,
    stop: Arc<AtomicBool>,
    texts: &Arc<Mutex<Vec<String>>>,
) -> Outcome {
    let source = Recording {
        inner: common::in_process_source(&config),
        texts: texts.clone(),
    };
    Trainer::<CpuAutodiff>::new(config, run_dir, resume, Default::default(), stop, observer)
        .unwrap()
        .with_source(source)
        .run()
        .unwrap()
}

#[test]
fn a_resumed_run_reads_the_same_prompts_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let (train, eval) = dataset_with_bad_records(dir.path());
    let whole = Arc::new(Mutex::new(Vec::new()));
    let config = data_config(&train, &eval, &[]);
    let outcome = run(
        config.clone(),
        &dir.path().join("whole"),
        false,
        Box::new(Silent),
        Arc::default(),
        &whole,
    );
    assert!(matches!(outcome, Outcome::Finished(_)));

    let parts = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let run_dir = dir.path().join("parts");
    let outcome = run(
        config.clone(),
        &run_dir,
        false,
        Box::new(StopAfterFirstRl(stop.clone())),
        stop,
        &parts,
    );
    assert!(matches!(outcome, Outcome::Interrupted { .. }));
    assert_eq!(parts.lock().unwrap().len(), 2, "one RL step of two prompts");
    let outcome = run(
        config,
        &run_dir,
        true,
        Box::new(Silent),
        Arc::default(),
        &parts,
    );
    assert!(matches!(outcome, Outcome::Finished(_)));

    let whole = whole.lock().unwrap().clone();
    assert_eq!(whole.len(), 6, "3 RL steps of 2 prompts");
    assert_eq!(*parts.lock().unwrap(), whole);
    // 4 usable records: 6 prompts span two epochs, so some record repeats.
    let usable = ["First?", "Grey?", "Second?", "Third?"];
    assert!(
        whole.iter().all(|t| usable.contains(&t.as_str())),
        "{whole:?}"
    );
}

/// `model.source = DIR`: a run starts from an HF Qwen3-VL directory (the tiny fixture, with its
/// own BPE tokenizer, not the embedded byte-level one) and trains on a JSONL file with images;
/// every checkpoint it writes is a complete HF directory that loads again, tokenizer included.
#[test]
fn a_run_starts_from_an_hf_directory_and_writes_complete_hf_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    solid(d, "red.png", [220, 40, 40]);
    solid(d, "blue.png", [50, 80, 230]);
    let record = |id: &str, image: &str, answer: &str| {
        json!({"id": id, "messages": [{"role": "user", "content": [
            {"type": "image", "image": image}, {"type": "text", "text": "Which colour?"}]}],
            "answer": answer})
        .to_string()
    };
    let lines = vec![
        record("r", "red.png", "red"),
        record("b", "blue.png", "blue"),
    ];
    write_jsonl(&d.join("train.jsonl"), &lines);
    write_jsonl(&d.join("eval.jsonl"), &lines);
    // The fixture plus a generation_config.json: <|im_end|> (994, already a stop token) and 7.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/data/qwen3vl-tiny-a");
    let hf = d.join("hf");
    std::fs::create_dir(&hf).unwrap();
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "preprocessor_config.json",
        ]
        .contains(&name.as_str())
        {
            std::fs::copy(&path, hf.join(name)).unwrap();
        }
    }
    std::fs::write(
        hf.join("generation_config.json"),
        r#"{"eos_token_id": [994, 7], "do_sample": true}"#,
    )
    .unwrap();
    let source = format!("model.source={:?}", hf.display().to_string());
    let config = data_config(&d.join("train.jsonl"), &d.join("eval.jsonl"), &[&source]);
    let run_dir = d.join("run");
    common::train_to_end(config, &run_dir);

    let checkpoint = common::latest_checkpoint(&run_dir);
    for name in [
        "config.json",
        "tokenizer.json",
        "preprocessor_config.json",
        "generation_config.json",
    ] {
        assert!(
            checkpoint.join(name).is_file(),
            "{name} missing from {checkpoint:?}"
        );
    }
    // The fixture's tokenizer travelled with the weights, byte for byte.
    assert_eq!(
        std::fs::read(checkpoint.join("tokenizer.json")).unwrap(),
        std::fs::read(fixture.join("tokenizer.json")).unwrap()
    );
    let model = Qwen3Vl::<Cpu>::load(&checkpoint, &Default::default()).unwrap();
    assert_eq!(model.config.text_config.vocab_size, 1024);
    let processor = Processor::from_model_dir(&checkpoint, &model.config).unwrap();
    // Stop tokens: the chat template's end tokens, then generation_config.json's new one.
    let [im_end, endoftext] = processor.special.eos_ids();
    assert_eq!(processor.stop_token_ids, vec![im_end, endoftext, 7]);
    let ids = processor.tokenizer.encode("Which colour?").unwrap();
    assert_eq!(
        processor.tokenizer.decode(&ids, false).unwrap(),
        "Which colour?"
    );
    let records = common::metrics_records(&run_dir);
    assert!(records.iter().any(|r| r["stage"] == "rl"));
    assert!(records.iter().filter(|r| r["stage"] == "eval").count() >= 3);
}
