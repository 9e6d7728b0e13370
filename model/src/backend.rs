//! Backend choices. CPU: burn's `flex` backend by default (measured faster than `ndarray` on
//! this model, see the README), `ndarray` behind its feature. GPU: `burn-cuda` behind `cuda`.

#[cfg(feature = "flex")]
pub type Cpu = burn::backend::Flex;
#[cfg(all(not(feature = "flex"), feature = "ndarray"))]
pub type Cpu = burn::backend::NdArray;

/// CPU backend with autodiff, for training.
pub type CpuAutodiff = burn::backend::Autodiff<Cpu>;

#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;
