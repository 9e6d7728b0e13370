//! `math`: 1.0 when the response's final answer is mathematically equal to the reference, else
//! 0.0; not applicable without a reference; quarantined when the reference is empty, over the
//! size limit or of a form the config does not allow, and when an answer is too large to
//! compare (a giant expression is a clear quarantine, never a hang).
//!
//! Unlike `numeric` (one number only), every answer type is read: numbers in any notation,
//! expressions, tuples, sets, intervals and unions, matrices, equations and inequalities, text
//! and option letters. One concept per file:
//!
//! - [`extract`]: which part of the response is the answer (box, tag, phrase, last line, `$…$`);
//! - [`lexer`] and [`parse`]: LaTeX or plain text to an [`expr::Expr`] tree, with size limits;
//! - [`eval`]: exact rational arithmetic and `f64` evaluation under a step budget;
//! - [`equiv`]: equality of two trees (exact, tolerance, identity testing at points, sets,
//!   intervals, equations);
//! - [`config`]: the options; [`reward`]: the [`Reward`](crate::Reward) impl.
//!
//! **Against gaming.** Only the extracted answer counts, whole: `\frac{1+\sqrt{5}}{2}` is that
//! number, never the 2 at its end. Hedging is no answer: `3 or 4`, `3 \text{ or } 4`, numbers
//! side by side (`1 2 3 4`), boxes listed as candidates (`\boxed{1}, \boxed{2}`) or more than
//! `max_distinct_boxes` different boxes; a list answer (`1, 2, 3`) is a set and equals only that
//! set.
//!
//! **No CAS crate.** The parser and evaluator are written here (pure Rust, about a thousand
//! lines, no new dependency): the pure-Rust symbolic crates either parse no LaTeX or pull large
//! dependency trees, and evaluation at random points — what identity testing needs — is a few
//! dozen lines over an `f64` tree walk.

pub mod config;
pub mod equiv;
pub mod eval;
pub mod expr;
pub mod extract;
pub mod lexer;
pub mod parse;
pub mod reward;

pub use config::{Form, MathConfig, Source};
pub use reward::MathAnswer;
