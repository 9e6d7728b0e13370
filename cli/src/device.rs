//! `--device cpu|cuda`: picks the burn backend a command runs on; `--dtype f32|bf16` its compute
//! dtype.

use burn::tensor::FloatDType;
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
                    $crate::device::check_cuda_driver()?;
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

/// Fails with a clear message when the CUDA driver library cannot be loaded (burn-cuda would
/// panic in a worker thread instead).
#[cfg(feature = "cuda")]
pub fn check_cuda_driver() -> anyhow::Result<()> {
    for name in [c"libcuda.so.1", c"libcuda.so"] {
        // SAFETY: dlopen with a valid C string; the handle is closed right away.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY) };
        if !handle.is_null() {
            unsafe { libc::dlclose(handle) };
            return Ok(());
        }
    }
    anyhow::bail!(
        "--device cuda: the NVIDIA driver library libcuda.so.1 cannot be loaded; run on a machine \
         with an NVIDIA GPU and driver (or add its directory to LD_LIBRARY_PATH), or use --device cpu"
    )
}

/// Compute dtype of a command's model (weights, activations, KV cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    F32,
    Bf16,
}

impl Dtype {
    pub fn float(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::Bf16 => FloatDType::BF16,
        }
    }
}
