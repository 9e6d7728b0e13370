//! GPU kernels: the cuBLAS matmul path (CUDA backends only), the plan that maps a burn matmul
//! onto one cuBLAS call, the autodiff node whose GEMMs come from the caller, and the cuBLAS
//! self-checks (behind the `self-checks` feature: a tool for `temper bench`, not library API).

#[cfg(feature = "cuda")]
pub(crate) mod cublas;
#[cfg(feature = "self-checks")]
pub mod cublas_check;
pub mod gemm_plan;
pub mod matmul_autodiff;
