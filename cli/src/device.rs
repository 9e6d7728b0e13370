//! `--device cpu|cuda`: picks the burn backend a command runs on.

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    Cpu,
    Cuda,
}

/// Runs `$body` with `B` bound to the chosen backend and `$device` to its default device.
macro_rules! with_backend {
    ($kind:expr, |$b:ident, $device:ident| $body:expr) => {{
        match $kind {
            $crate::device::DeviceKind::Cpu => {
                type $b = temper_model::backend::Cpu;
                let $device = burn::tensor::Device::<$b>::default();
                $body
            }
            $crate::device::DeviceKind::Cuda => {
                #[cfg(feature = "cuda")]
                {
                    type $b = temper_model::backend::Cuda;
                    let $device = burn::tensor::Device::<$b>::default();
                    $body
                }
                #[cfg(not(feature = "cuda"))]
                {
                    anyhow::bail!(
                        "this temper was built without CUDA; rebuild with \
                         `CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda`"
                    )
                }
            }
        }
    }};
}
pub(crate) use with_backend;
