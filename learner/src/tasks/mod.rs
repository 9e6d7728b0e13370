//! Where prompts come from: the [`Task`](task::Task) contract and the built-in tasks with
//! verifiable answers.

pub mod shapes;
pub mod task;
