//! Global-norm gradient clipping, as `torch.nn.utils.clip_grad_norm_`: every gradient is scaled
//! by `min(1, max_norm / (‖g‖₂ + 1e-6))`, where `‖g‖₂` is taken over all parameters together.
//! (burn's `GradientClippingConfig::Norm` clips each parameter on its own, which changes the
//! update direction.)

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

/// Sums the squared gradients of every float parameter on the device.
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) else {
            return;
        };
        let squares = grad.powi_scalar(2).sum();
        self.total = Some(match self.total.take() {
            Some(total) => total + squares,
            None => squares,
        });
    }
}

/// Scales every gradient by one factor.
struct Scale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: f64,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, grad * self.factor);
        }
    }
}

/// The global L2 norm of `grads` over `model`'s parameters.
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> f64 {
    let mut visitor = SquaredNorm::<B> { grads, total: None };
    model.visit(&mut visitor);
    visitor
        .total
        .map_or(0.0, |t| t.into_scalar().elem::<f64>().sqrt())
}

/// Clips `grads` to global norm `max_norm`; returns the norm measured before clipping.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let norm = global_grad_norm::<B, M>(model, grads);
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        let mut visitor = Scale::<B> {
            grads,
            factor,
            _backend: std::marker::PhantomData,
        };
        model.visit(&mut visitor);
    }
    norm
}
