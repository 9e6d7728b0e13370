//! [`check_prompt_length`], the guard against prompts longer than the context.

use super::error::ChatError;

/// Checks that a prompt of `n_tokens` tokens fits a limit of `max` tokens.
pub fn check_prompt_length(n_tokens: usize, max: usize) -> Result<(), ChatError> {
    if n_tokens > max {
        return Err(ChatError::PromptTooLong { n_tokens, max });
    }
    Ok(())
}
