//! "Count the coloured shapes": a synthetic visual task with a verifiable one-token answer.
//!
//! Each example is an RGB image with 1–`max_shapes` non-overlapping filled squares in four
//! colours on a dark background, and the question "How many {colour} squares are there?" whose
//! answer, a digit from 0 to `max_shapes`, is uniformly distributed. Examples are a pure function
//! of `(seed, split, index)`, so a run is reproducible and the held-out split never shares an
//! example stream with the training split.

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The palette: name and RGB value.
pub const COLOURS: [(&str, [u8; 3]); 4] = [
    ("red", [220, 40, 40]),
    ("green", [40, 200, 60]),
    ("blue", [50, 80, 230]),
    ("yellow", [230, 210, 40]),
];

const BACKGROUND: [u8; 3] = [20, 20, 28];

pub use super::task::Split;
use super::task::{Task, TaskError, TaskPrompt};
use temper_model::chat::{ContentPart, Message};

/// What the question asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    /// "How many {colour} squares are there?": the squares of one colour, among distractors.
    CountColour,
    /// "How many squares are there?": every square counts (no distractors).
    CountAll,
}

/// Task settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShapesTask {
    /// Side of the square image in pixels (a multiple of 32 keeps the processor from resizing).
    pub image_size: u32,
    /// Most squares in one image.
    pub max_shapes: usize,
    /// Smallest square side in pixels.
    pub min_side: u32,
    /// Largest square side in pixels.
    pub max_side: u32,
    /// 0: squares anywhere (1-pixel gaps). `c > 0`: the image is a grid of `c × c` cells and
    /// each square sits, jittered, inside its own cell. With `c` = patch size × merge size, one
    /// merged vision token sees at most one whole square, which a tiny model learns quickly.
    pub grid_cell: u32,
    /// The question.
    pub ask: Ask,
}

impl Default for ShapesTask {
    fn default() -> Self {
        Self {
            image_size: 64,
            max_shapes: 4,
            min_side: 8,
            max_side: 14,
            grid_cell: 0,
            ask: Ask::CountColour,
        }
    }
}

/// One question with its image and reference answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapesExample {
    /// The picture.
    pub image: RgbImage,
    /// The user's question.
    pub question: String,
    /// The reference answer (one digit).
    pub answer: String,
    /// `(x, y, side, colour index)` of every square, for inspection.
    pub squares: Vec<(u32, u32, u32, usize)>,
}

impl ShapesTask {
    /// Rejects settings that cannot produce examples, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_shapes == 0 || self.max_shapes > 9 {
            return Err(format!(
                "max_shapes must be in 1..=9 (one-digit answers), got {}",
                self.max_shapes
            ));
        }
        if self.min_side == 0 || self.min_side > self.max_side {
            return Err(format!(
                "need 0 < min_side ≤ max_side, got {} and {}",
                self.min_side, self.max_side
            ));
        }
        if let Some(per_row) = self.image_size.checked_div(self.grid_cell) {
            let cells = per_row.pow(2);
            if self.max_side >= self.grid_cell || (cells as usize) < self.max_shapes {
                return Err(format!(
                    "grid_cell {} needs max_side < grid_cell and at least max_shapes ({}) cells \
                     in a {}-pixel image",
                    self.grid_cell, self.max_shapes, self.image_size
                ));
            }
            return Ok(());
        }
        // Worst case: every square at max_side plus a 1-pixel gap must fit side by side.
        let per_row = self.image_size / (self.max_side + 1);
        if (per_row * per_row) < self.max_shapes as u32 {
            return Err(format!(
                "image_size {} is too small for {} squares of side {}",
                self.image_size, self.max_shapes, self.max_side
            ));
        }
        Ok(())
    }

    /// The question about colour `asked` (an index into [`COLOURS`]).
    fn question(&self, asked: usize) -> String {
        match self.ask {
            Ask::CountColour => format!(
                "How many {} squares are there? Answer with a digit.",
                COLOURS[asked].0
            ),
            Ask::CountAll => "How many squares are there? Answer with a digit.".to_string(),
        }
    }

    /// Every question the task asks (to size prompts before any image is drawn).
    pub fn questions(&self) -> Vec<String> {
        let mut questions: Vec<String> = (0..COLOURS.len()).map(|c| self.question(c)).collect();
        questions.dedup();
        questions
    }

    /// Example `index` of `split` for run seed `seed`.
    pub fn example(&self, seed: u64, split: Split, index: u64) -> ShapesExample {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(match split {
            Split::Train => 2 * index,
            Split::Eval => 2 * index + 1,
        });
        // Draw the answer first so every count 0..=max_shapes is equally likely, then add
        // squares of other colours as distractors (at least one square in every image).
        let asked = rng.random_range(0..COLOURS.len());
        let answer = rng.random_range(0..=self.max_shapes);
        let distractors = match self.ask {
            Ask::CountColour => {
                rng.random_range(usize::from(answer == 0)..=self.max_shapes - answer)
            }
            Ask::CountAll => 0,
        };
        let own_colour = |rng: &mut ChaCha8Rng| match self.ask {
            Ask::CountColour => asked,
            Ask::CountAll => rng.random_range(0..COLOURS.len()),
        };
        let mut colours: Vec<usize> = (0..answer).map(|_| own_colour(&mut rng)).collect();
        for _ in 0..distractors {
            colours.push((asked + rng.random_range(1..COLOURS.len())) % COLOURS.len());
        }
        let mut squares: Vec<(u32, u32, u32, usize)> = Vec::with_capacity(colours.len());
        if let Some(per_row) = self.image_size.checked_div(self.grid_cell) {
            let mut cells: Vec<u32> = (0..per_row * per_row).collect();
            for &colour in &colours {
                let cell = cells.swap_remove(rng.random_range(0..cells.len()));
                let side = rng.random_range(self.min_side..=self.max_side);
                let slack = self.grid_cell - side;
                let x = (cell % per_row) * self.grid_cell + rng.random_range(0..slack);
                let y = (cell / per_row) * self.grid_cell + rng.random_range(0..slack);
                squares.push((x, y, side, colour));
            }
        }
        while squares.len() < colours.len() {
            let side = rng.random_range(self.min_side..=self.max_side);
            let x = rng.random_range(0..=self.image_size - side);
            let y = rng.random_range(0..=self.image_size - side);
            // Keep a 1-pixel gap so squares never touch (each is one connected region).
            let clear = squares.iter().all(|&(ox, oy, os, _)| {
                x + side < ox || ox + os < x || y + side < oy || oy + os < y
            });
            if clear {
                squares.push((x, y, side, colours[squares.len()]));
            }
        }
        let mut image = RgbImage::from_pixel(self.image_size, self.image_size, Rgb(BACKGROUND));
        for &(x, y, side, colour) in &squares {
            for py in y..y + side {
                for px in x..x + side {
                    image.put_pixel(px, py, Rgb(COLOURS[colour].1));
                }
            }
        }
        ShapesExample {
            image,
            question: self.question(asked),
            answer: answer.to_string(),
            squares,
        }
    }
}

/// The shapes task as a [`Task`]: one user message (the image, then the question), the digit as
/// the reference; index `i` is [`ShapesTask::example`]'s example `i`. Never fails.
impl Task for ShapesTask {
    fn prompt(&self, seed: u64, split: Split, index: u64) -> Result<TaskPrompt, TaskError> {
        let ShapesExample {
            image,
            question,
            answer,
            ..
        } = self.example(seed, split, index);
        let messages = vec![Message::new(
            "user",
            vec![ContentPart::Image, ContentPart::text(question.clone())],
        )];
        Ok(TaskPrompt {
            id: index.to_string(),
            messages,
            images: vec![image],
            videos: Vec::new(),
            text: question,
            reference: Some(answer),
            metadata: None,
            tools: Vec::new(),
        })
    }

    fn len(&self, _split: Split) -> Option<u64> {
        None
    }
}

/// Whether a response answers `reference`: its first digit, ignoring surrounding text.
pub fn is_correct(response: &str, reference: &str) -> bool {
    response
        .chars()
        .find(char::is_ascii_digit)
        .is_some_and(|d| reference.starts_with(d))
}
