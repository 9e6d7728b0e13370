//! The optimiser update both stages end a (mini-)batch with: clip the accumulated gradient's
//! global norm, step AdamW at the stage schedule's learning rate, bump the policy version.

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;

use super::config::OptimConfig;
use super::trainer::Trainer;
use crate::grad_clip::{clip_global_norm, global_grad_norm};

impl<B: AutodiffBackend> Trainer<B> {
    /// Clips, steps the optimiser on the stage's schedule; returns (grad norm, lr).
    pub(super) fn apply_update(
        &mut self,
        mut grads: GradientsParams,
        optim: &OptimConfig,
        stage_updates: usize,
    ) -> (f64, f64) {
        let grad_norm = if optim.max_grad_norm > 0.0 {
            clip_global_norm::<B, _>(&self.model, &mut grads, optim.max_grad_norm)
        } else {
            global_grad_norm::<B, _>(&self.model, &grads)
        };
        let lr = optim
            .schedule(stage_updates)
            .lr_at(self.optimizer.steps() as usize);
        // burn's `map` consumes the module; the clone shares the parameter buffers.
        self.model = self.optimizer.step::<B, _>(lr, self.model.clone(), grads);
        self.state.policy_version += 1;
        (grad_norm, lr)
    }
}
