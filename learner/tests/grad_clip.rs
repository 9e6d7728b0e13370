//! Global-norm clipping against hand-derived gradients.

use burn::backend::Autodiff;
use burn::module::Param;
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::prelude::*;
use temper_learner::grad_clip::{clip_global_norm, global_grad_norm};
use temper_model::backend::Cpu;

type A = Autodiff<Cpu>;

#[test]
fn clips_all_parameters_by_one_factor() {
    let device = Default::default();
    // y = x·W + b with W = 0, b = 0; loss = Σ y ⊙ c  ⇒  dW = xᵀc, db = Σ_rows c.
    let linear = Linear::<A> {
        weight: Param::from_tensor(Tensor::zeros([2, 2], &device)),
        bias: Some(Param::from_tensor(Tensor::zeros([2], &device))),
    };
    let x = Tensor::<A, 2>::from_data([[1.0, 2.0]], &device);
    let c = Tensor::<A, 2>::from_data([[3.0, 4.0]], &device);
    let loss = (linear.forward(x) * c).sum();
    let mut grads = GradientsParams::from_grads(loss.backward(), &linear);
    // dW = [[3, 4], [6, 8]], db = [3, 4] ⇒ ‖g‖² = 9+16+36+64+9+16 = 150.
    let expected = 150f64.sqrt();
    assert!((global_grad_norm::<A, _>(&linear, &grads) - expected).abs() < 1e-5);

    let before = clip_global_norm::<A, _>(&linear, &mut grads, 1.0);
    assert!((before - expected).abs() < 1e-5);
    assert!((global_grad_norm::<A, _>(&linear, &grads) - 1.0).abs() < 1e-5);
    let db = grads
        .get::<Cpu, 1>(linear.bias.as_ref().unwrap().id)
        .unwrap();
    let db = db.into_data().convert::<f32>().into_vec::<f32>().unwrap();
    let scale = 1.0 / (expected + 1e-6) as f32;
    assert!((db[0] - 3.0 * scale).abs() < 1e-6 && (db[1] - 4.0 * scale).abs() < 1e-6);

    // Below the threshold nothing changes.
    let after = clip_global_norm::<A, _>(&linear, &mut grads, 10.0);
    assert!((after - 1.0).abs() < 1e-5);
    assert!((global_grad_norm::<A, _>(&linear, &grads) - 1.0).abs() < 1e-5);
}
