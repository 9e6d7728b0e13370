//! The shapes task: deterministic, answers verified by an independent pixel count (connected
//! regions of the asked colour), splits disjoint, answer distribution not degenerate.

use std::collections::{HashMap, HashSet};

use temper_learner::tasks::shapes::{COLOURS, ShapesTask, Split, is_correct};

/// Counts 4-connected regions of exactly `rgb` by flood fill.
fn regions(image: &image::RgbImage, rgb: [u8; 3]) -> usize {
    let (w, h) = image.dimensions();
    let mut seen = vec![false; (w * h) as usize];
    let mut count = 0;
    for start in 0..w * h {
        if seen[start as usize] || image.get_pixel(start % w, start / w).0 != rgb {
            continue;
        }
        count += 1;
        let mut stack = vec![start];
        seen[start as usize] = true;
        while let Some(p) = stack.pop() {
            let (x, y) = (p % w, p / w);
            let neighbours = [
                (x.wrapping_sub(1), y),
                (x + 1, y),
                (x, y.wrapping_sub(1)),
                (x, y + 1),
            ];
            for (nx, ny) in neighbours {
                if nx < w && ny < h {
                    let q = ny * w + nx;
                    if !seen[q as usize] && image.get_pixel(nx, ny).0 == rgb {
                        seen[q as usize] = true;
                        stack.push(q);
                    }
                }
            }
        }
    }
    count
}

#[test]
fn answers_match_an_independent_pixel_count() {
    let free = ShapesTask::default();
    let grid = ShapesTask {
        grid_cell: 16,
        min_side: 6,
        max_side: 12,
        ..ShapesTask::default()
    };
    for task in [free, grid] {
        answers_match_for(&task);
    }
}

fn answers_match_for(task: &ShapesTask) {
    task.validate().unwrap();
    let mut answers: HashMap<String, usize> = HashMap::new();
    for i in 0..300 {
        let ex = task.example(7, Split::Train, i);
        let (name, rgb) = COLOURS
            .iter()
            .find(|(n, _)| ex.question.contains(&format!(" {n} ")))
            .unwrap();
        assert_eq!(
            regions(&ex.image, *rgb).to_string(),
            ex.answer,
            "example {i} ({name})"
        );
        *answers.entry(ex.answer).or_default() += 1;
    }
    // Answers 0..=4 are (roughly) uniform: 300 draws, 60 expected each.
    for digit in ["0", "1", "2", "3", "4"] {
        let n = answers.get(digit).copied().unwrap_or(0);
        assert!((35..=85).contains(&n), "{answers:?}");
    }
}

#[test]
fn examples_are_deterministic_and_splits_are_disjoint() {
    let task = ShapesTask::default();
    assert_eq!(
        task.example(1, Split::Train, 5),
        task.example(1, Split::Train, 5)
    );
    assert_ne!(
        task.example(1, Split::Train, 5),
        task.example(2, Split::Train, 5)
    );
    let train: HashSet<Vec<u8>> = (0..200)
        .map(|i| task.example(3, Split::Train, i).image.into_raw())
        .collect();
    let eval_overlap = (0..200)
        .filter(|&i| train.contains(&task.example(3, Split::Eval, i).image.into_raw()))
        .count();
    assert_eq!(eval_overlap, 0);
}

#[test]
fn grading_and_validation() {
    assert!(is_correct("3", "3"));
    assert!(is_correct("There are 2 squares.", "2"));
    assert!(!is_correct("two", "2"));
    assert!(!is_correct("4", "2"));
    let bad = ShapesTask {
        image_size: 16,
        ..ShapesTask::default()
    };
    assert!(bad.validate().unwrap_err().contains("image_size"));
    let bad = ShapesTask {
        max_shapes: 12,
        ..ShapesTask::default()
    };
    assert!(bad.validate().unwrap_err().contains("max_shapes"));
}

#[test]
#[ignore = "writes sample images to $TEMPER_SHAPES_DIR for a look"]
fn write_samples() {
    let dir = std::env::var("TEMPER_SHAPES_DIR").unwrap();
    let task = ShapesTask::default();
    for i in 0..4 {
        let ex = task.example(11, Split::Train, i);
        ex.image
            .save(format!("{dir}/sample{i}_{}.png", ex.answer))
            .unwrap();
        println!("sample {i}: {} -> {}", ex.question, ex.answer);
    }
}
