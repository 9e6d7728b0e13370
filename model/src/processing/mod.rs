//! The burn-free processing around the model: the tokenizer, the chat template (messages, tool
//! calls, vision placeholders), image and video preprocessing, and the processor that turns
//! messages and pixels into a model batch.

pub mod chat;
pub mod preprocess;
pub mod processor;
pub mod tokenizer;
