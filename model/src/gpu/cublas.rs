//! cuBLAS matmuls for burn-cuda tensors (feature `cuda`), with and without autodiff.
//!
//! Why: burn 0.21's CUDA matmul kernels are far from cuBLAS on an H100 — bf16 at 4096³ runs at
//! 180 TFLOP/s against cuBLAS's 734, and the decode-shaped `[M, 2048] × [2048, 6144]`
//! (M = 1..64) takes 33–46 µs against 18–20 µs. Model code calls [`crate::nn::matmul`] /
//! [`crate::nn::linear`], which land here when the backend is [`Cuda`] or `Autodiff<Cuda>`;
//! every other backend keeps burn's op untouched.
//!
//! Mechanism:
//! - Backend dispatch without `unsafe`: `Tensor<B, D>` is `'static`, so it is moved through
//!   `dyn Any` and downcast to `Tensor<Cuda, D>` / `Tensor<Autodiff<Cuda>, D>` ([`cast`]).
//! - Layout: [`crate::gemm_plan::plan`] maps shapes/strides onto one `cublasGemmEx` or
//!   `cublasGemmStridedBatchedEx` (transposed views through the op flags, a weight broadcast over
//!   a batch folded into the rows), or a short loop of them for two-level batch strides; other
//!   layouts, a dtype other than f32/f16/bf16, mixed dtypes or a missing libcublas fall back to
//!   burn's matmul.
//! - Pointers: a burn-cuda float primitive is a `CubeTensor<CudaRuntime>` (`client`, `handle`,
//!   `meta` shape/strides, `dtype`); on the device thread `ComputeServer::get_resource(binding,
//!   stream)` returns cubecl-cuda's `GpuResource` whose `ptr` is the device address including
//!   the handle's offsets. The output is a contiguous tensor allocated through the same client.
//! - Ordering: cubecl-cuda runs each burn op on a private non-blocking `CUstream` it does not
//!   expose (`compute/stream.rs`: `Stream { sys, .. }` inside a `pub(crate)` module), so the
//!   cuBLAS handle cannot simply be set to it. Instead the call is queued as a task on cubecl's
//!   device thread (`DeviceHandle::submit`, the queue every burn launch goes through, run in
//!   order), so it runs after every earlier burn op was launched and before any later one, and
//!   is fenced against the *context*: `cuCtxRecordEvent` (everything submitted so far, on every
//!   stream) → `cuStreamWaitEvent` on our stream → GEMM → `cuEventRecord` → `cuCtxWaitEvent`
//!   (all later work in the context waits for the GEMM). The calling thread does not wait.
//!   Both are device-side waits (CUDA ≥ 12.5; cubecl uses the device's primary context). Where
//!   the driver lacks them, or with `TEMPER_CUBLAS=sync`, the GEMM is bracketed by
//!   `cuCtxSynchronize` / `cuStreamSynchronize` instead: correct, but the device thread (which
//!   launches every burn op) then waits for the GPU to drain twice per GEMM, so the GPU idles
//!   while launches catch up — likely more than the 15–25 µs a decode-sized GEMM gains.
//!   The first GEMM on a device creates its cuBLAS state there and waits for it; whatever can
//!   fail before the GEMM is queued falls back to burn, and a failure after that (the output is
//!   already handed out) is logged as an error and leaves the output NaN, never garbage.
//! - Precision: f32 uses `CUBLAS_COMPUTE_32F` (true FP32, not TF32: f32 is the parity path
//!   checked against transformers, where burn's TF32 matmul is the larger error); f16 and bf16
//!   inputs accumulate in f32 (`CUBLAS_COMPUTE_32F`) and write their own dtype, like burn.
//! - Autodiff: a `matmul_autodiff::matmul_with` node whose forward and backward
//!   (`dA = dC·Bᵀ`, `dB = Aᵀ·dC`, broadcast batch dims summed) all go through cuBLAS; a weight
//!   broadcast over a batch gets its gradient from a single GEMM over `K = batch · rows`.
//!
//! `TEMPER_CUBLAS=0` (or `off`) turns the routing off (burn's matmul everywhere, for A/B runs);
//! `TEMPER_CUBLAS=sync` forces the host-synchronised ordering.

use std::any::Any;
use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as Atomic};
use std::sync::{LazyLock, Mutex, OnceLock};

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::prelude::*;
use burn::tensor::ops::FloatTensorOps;
use burn::tensor::{DType, TensorPrimitive};
use burn_cubecl::cubecl::Runtime;
use burn_cubecl::cubecl::cuda::{CudaDevice, CudaRuntime};
use burn_cubecl::cubecl::device_handle::DeviceHandle;
use burn_cubecl::cubecl::server::{ComputeServer as _, Handle};
use burn_cubecl::cubecl::stream_id::StreamId;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cudarc::cublas::result as blas;
use cudarc::cublas::sys as blas_sys;
use cudarc::driver::result as driver;
use cudarc::driver::sys as cu;

use crate::backend::Cuda;
use crate::gemm_plan::{GemmPlan, plan};
use crate::matmul_autodiff::matmul_with;

/// burn-cuda's float tensor primitive.
type CudaTensor = CubeTensor<CudaRuntime>;
type AutodiffCuda = Autodiff<Cuda>;

/// cuBLAS workspace per device; 32 MiB is NVIDIA's recommendation for Hopper.
const WORKSPACE_BYTES: usize = 32 << 20;

static GEMMS: AtomicU64 = AtomicU64::new(0);
static FALLBACKS: AtomicU64 = AtomicU64::new(0);
static GEMM_ERROR_LOGGED: AtomicBool = AtomicBool::new(false);

/// `TEMPER_CUBLAS`: routing on (default), on with host-synchronised ordering, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    On,
    HostSync,
    Off,
}

fn mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| {
        let value = std::env::var("TEMPER_CUBLAS").unwrap_or_default();
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "1" | "on" | "true" => Mode::On,
            "sync" => Mode::HostSync,
            "0" | "off" | "false" => Mode::Off,
            other => {
                tracing::warn!("TEMPER_CUBLAS={other:?} is not 0/off, 1/on or sync; using on");
                Mode::On
            }
        }
    })
}

/// Why a matmul did not go through cuBLAS (the caller then uses burn's).
#[derive(Debug)]
enum Skip {
    /// Layout, dtype or shape that one cuBLAS call cannot express.
    Unsupported,
    /// libcublas or the device's cuBLAS state could not be set up (logged once).
    Unavailable,
    /// A driver or cuBLAS call failed (logged once).
    Failed(String),
}

/// Whether `nn::matmul` / `nn::linear` route `B` here: `B` is `Cuda` or `Autodiff<Cuda>` and
/// `TEMPER_CUBLAS` is not off.
pub(crate) fn routes<B: Backend>() -> bool {
    use std::any::TypeId;
    let b = TypeId::of::<B>();
    mode() != Mode::Off && (b == TypeId::of::<Cuda>() || b == TypeId::of::<AutodiffCuda>())
}

/// `lhs · rhs` for the CUDA backends (cuBLAS, or burn's kernel where cuBLAS does not apply);
/// gives the tensors back for any other backend, or when routing is off.
pub(crate) fn route<B: Backend, const D: usize>(
    lhs: Tensor<B, D>,
    rhs: Tensor<B, D>,
) -> Result<Tensor<B, D>, (Tensor<B, D>, Tensor<B, D>)> {
    if mode() == Mode::Off {
        return Err((lhs, rhs));
    }
    let (lhs, rhs) = match cast_pair::<_, Tensor<Cuda, D>>(lhs, rhs) {
        Ok((l, r)) => return Ok(cast_back(cuda_matmul(l, r))),
        Err(pair) => pair,
    };
    match cast_pair::<_, Tensor<AutodiffCuda, D>>(lhs, rhs) {
        Ok((l, r)) => Ok(cast_back(autodiff_matmul(l, r))),
        Err(pair) => Err(pair),
    }
}

/// The cuBLAS result of `lhs · rhs` on plain `Cuda` tensors whatever `TEMPER_CUBLAS` says, or
/// `None` (other backend, unsupported layout, cuBLAS unavailable). For benches and checks.
pub(crate) fn forced<B: Backend, const D: usize>(
    lhs: Tensor<B, D>,
    rhs: Tensor<B, D>,
) -> Option<Tensor<B, D>> {
    let (lhs, rhs) = cast_pair::<_, Tensor<Cuda, D>>(lhs, rhs).ok()?;
    let (TensorPrimitive::Float(a), TensorPrimitive::Float(b)) =
        (lhs.into_primitive(), rhs.into_primitive())
    else {
        return None;
    };
    let out = gemm(&a, &b).ok()?;
    Some(cast_back(Tensor::<Cuda, D>::from_primitive(
        TensorPrimitive::Float(out),
    )))
}

/// `(matmuls queued on cuBLAS, matmuls on a CUDA backend that fell back to burn)` since start.
pub(crate) fn counters() -> (u64, u64) {
    (GEMMS.load(Atomic::Relaxed), FALLBACKS.load(Atomic::Relaxed))
}

/// One line on the routing mode, the library and each initialised device's ordering.
pub(crate) fn status() -> String {
    let library = match LIBRARY.get() {
        None => "not loaded yet".to_string(),
        Some(true) => "libcublas loaded".to_string(),
        Some(false) => "libcublas NOT FOUND".to_string(),
    };
    let devices = DEVICES.lock().map_or_else(
        |_| "device state poisoned".to_string(),
        |devices| {
            let mut items: Vec<String> = devices
                .iter()
                .map(|(index, state)| match state {
                    Ok(s) => format!("cuda:{index} {:?}", s.ordering),
                    Err(e) => format!("cuda:{index} unavailable ({e})"),
                })
                .collect();
            items.sort();
            items.join(", ")
        },
    );
    let (gemms, fallbacks) = counters();
    let failures = FAILURES.load(Atomic::Relaxed);
    format!(
        "TEMPER_CUBLAS mode {:?}; {library}; {}; {gemms} matmuls on cuBLAS ({failures} failed), \
         {fallbacks} on burn's kernel",
        mode(),
        if devices.is_empty() {
            "no device initialised"
        } else {
            &devices
        }
    )
}

/// Moves `value` into `U` when it is one (same type), else hands it back.
fn cast<T: 'static, U: 'static>(value: T) -> Result<U, T> {
    let mut slot = Some(value);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<U>>() {
        Some(target) => Ok(target.take().expect("filled above")),
        None => Err(slot.expect("untouched")),
    }
}

fn cast_pair<T: 'static, U: 'static>(lhs: T, rhs: T) -> Result<(U, U), (T, T)> {
    match cast::<T, U>(lhs) {
        Ok(l) => match cast::<T, U>(rhs) {
            Ok(r) => Ok((l, r)),
            Err(_) => unreachable!("lhs and rhs have the same type"),
        },
        Err(l) => Err((l, rhs)),
    }
}

/// The inverse of a successful [`cast`]: the types are equal by construction.
fn cast_back<T: 'static, U: 'static>(value: T) -> U {
    match cast::<T, U>(value) {
        Ok(u) => u,
        Err(_) => unreachable!("cast back to the type it came from"),
    }
}

/// Plain burn-cuda: cuBLAS, else burn's matmul (`Tensor::matmul`, exactly as before).
fn cuda_matmul<const D: usize>(lhs: Tensor<Cuda, D>, rhs: Tensor<Cuda, D>) -> Tensor<Cuda, D> {
    let (a, b) = match (lhs.into_primitive(), rhs.into_primitive()) {
        (TensorPrimitive::Float(a), TensorPrimitive::Float(b)) => (a, b),
        (a, b) => return Tensor::from_primitive(a).matmul(Tensor::from_primitive(b)),
    };
    match gemm(&a, &b) {
        Ok(out) => Tensor::from_primitive(TensorPrimitive::Float(out)),
        Err(skip) => {
            note_fallback(&a, &b, &skip);
            let a = Tensor::<Cuda, D>::from_primitive(TensorPrimitive::Float(a));
            a.matmul(Tensor::from_primitive(TensorPrimitive::Float(b)))
        }
    }
}

/// `Autodiff<Cuda>`: a [`matmul_with`] node with cuBLAS for the forward and both gradients
/// when cuBLAS takes the forward, else burn's autodiff matmul.
fn autodiff_matmul<const D: usize>(
    lhs: Tensor<AutodiffCuda, D>,
    rhs: Tensor<AutodiffCuda, D>,
) -> Tensor<AutodiffCuda, D> {
    let (a, b) = match (lhs.into_primitive(), rhs.into_primitive()) {
        (TensorPrimitive::Float(a), TensorPrimitive::Float(b)) => (a, b),
        (a, b) => return Tensor::from_primitive(a).matmul(Tensor::from_primitive(b)),
    };
    match gemm(&a.primitive, &b.primitive) {
        Ok(out) => {
            let node = matmul_with::<Cuda, NoCheckpointing>(a, b, out, matmul_primitive);
            Tensor::from_primitive(TensorPrimitive::Float(node))
        }
        Err(skip) => {
            note_fallback(&a.primitive, &b.primitive, &skip);
            let a = Tensor::<AutodiffCuda, D>::from_primitive(TensorPrimitive::Float(a));
            a.matmul(Tensor::from_primitive(TensorPrimitive::Float(b)))
        }
    }
}

/// cuBLAS, else burn's matmul, on primitives (the backward GEMMs).
fn matmul_primitive(lhs: CudaTensor, rhs: CudaTensor) -> CudaTensor {
    match gemm(&lhs, &rhs) {
        Ok(out) => out,
        Err(skip) => {
            note_fallback(&lhs, &rhs, &skip);
            Cuda::float_matmul(lhs, rhs)
        }
    }
}

/// Counts a matmul that went to burn's kernel; `RUST_LOG=temper_model::cublas=debug` names it.
fn note_fallback(lhs: &CudaTensor, rhs: &CudaTensor, skip: &Skip) {
    FALLBACKS.fetch_add(1, Atomic::Relaxed);
    tracing::debug!(
        lhs_shape = ?&**lhs.meta.shape(),
        lhs_strides = ?&**lhs.meta.strides(),
        rhs_shape = ?&**rhs.meta.shape(),
        rhs_strides = ?&**rhs.meta.strides(),
        dtype = ?lhs.dtype,
        ?skip,
        "matmul on burn's kernel"
    );
}

/// `cudaDataType` of a burn float dtype cuBLAS takes here (accumulation is always f32).
fn data_type(dtype: DType) -> Option<blas_sys::cudaDataType> {
    match dtype {
        DType::F32 => Some(blas_sys::cudaDataType::CUDA_R_32F),
        DType::F16 => Some(blas_sys::cudaDataType::CUDA_R_16F),
        DType::BF16 => Some(blas_sys::cudaDataType::CUDA_R_16BF),
        _ => None,
    }
}

/// `lhs · rhs` (`[..., m, k] × [..., k, n] → [..., m, n]`, contiguous) through cuBLAS, or why
/// not. The GEMMs are queued on cubecl's device thread and the output returned at once.
fn gemm(lhs: &CudaTensor, rhs: &CudaTensor) -> Result<CudaTensor, Skip> {
    let dtype = lhs.dtype;
    let data_type = data_type(dtype).ok_or(Skip::Unsupported)?;
    if rhs.dtype != dtype || lhs.device != rhs.device {
        return Err(Skip::Unsupported);
    }
    let plan = plan(
        lhs.meta.shape(),
        lhs.meta.strides(),
        rhs.meta.shape(),
        rhs.meta.strides(),
    )
    .ok_or(Skip::Unsupported)?;
    if !library_loaded() {
        return Err(Skip::Unavailable);
    }
    let device = ready_device(&lhs.device).ok_or(Skip::Unavailable)?;
    let out = empty_device_contiguous_dtype(
        lhs.client.clone(),
        lhs.device.clone(),
        Shape::from(plan.out_shape.clone()),
        dtype,
    );
    let call = GemmCall {
        index: lhs.device.index,
        handles: [lhs.handle.clone(), rhs.handle.clone(), out.handle.clone()],
        plan,
        data_type,
        elem: dtype.size() as u64,
    };
    // Queued behind every burn op submitted so far and ahead of every later one: cubecl's
    // device thread runs its queue in order (see the module doc on ordering).
    device.submit(move |server: &mut Server| call.run(server));
    GEMMS.fetch_add(1, Atomic::Relaxed);
    Ok(out)
}

/// cubecl-cuda's server (the type is only reachable through the runtime).
type Server = <CudaRuntime as Runtime>::Server;

/// One queued matmul: the three tensors' handles (lhs, rhs, out) and how to multiply them.
struct GemmCall {
    index: usize,
    handles: [Handle; 3],
    plan: GemmPlan,
    data_type: blas_sys::cudaDataType,
    /// Bytes per element.
    elem: u64,
}

impl GemmCall {
    /// On the device thread: resolves the device pointers and runs the ordered GEMMs. A
    /// failure here cannot fall back to burn any more (the output was already handed out), so
    /// it is logged as an error and the output is filled with NaN rather than left as garbage.
    fn run(self, server: &mut Server) {
        // The channel runs this task under the submitting thread's stream id.
        let stream = StreamId::current();
        let [lhs, rhs, out] = self.handles;
        let mut pointers = [0u64; 3];
        let mut resources = Vec::with_capacity(3);
        let mut result = Ok(());
        // The output first, so that even a failed lookup of an input can still NaN it.
        for (slot, handle) in [2, 0, 1].into_iter().zip([out, lhs, rhs]) {
            match server.get_resource(handle.binding(), stream) {
                Ok(resource) => {
                    pointers[slot] = resource.resource().ptr;
                    // Held until the GEMM is queued: keeps each binding alive.
                    resources.push(resource);
                }
                Err(e) => {
                    result = Err(Skip::Failed(format!("cubecl get_resource: {e:?}")));
                    break;
                }
            }
        }
        let (plan, data_type, elem) = (&self.plan, self.data_type, self.elem);
        if result.is_ok() {
            result = with_device(self.index, |state| {
                // SAFETY: the pointers are live device allocations of the right extent (the
                // plan was derived from these tensors' shapes/strides and sized the output),
                // held by the resources above and by the caller's tensors; this runs on
                // cubecl's device thread between burn's launches, ordered by `state.run`.
                unsafe { state.run(plan, data_type, elem, pointers) }
            });
        }
        if let Err(skip) = result {
            fail(match skip {
                Skip::Failed(reason) => reason,
                other => format!("{other:?}"),
            });
            if pointers[2] != 0 {
                let bytes = plan.out_shape.iter().product::<usize>() * elem as usize;
                let _ = with_device(self.index, |state| {
                    // SAFETY: the output allocation holds `bytes` bytes (sized from the plan).
                    unsafe { state.poison(pointers[2], bytes) }
                });
            }
        }
    }
}

static FAILURES: AtomicU64 = AtomicU64::new(0);

/// Records a GEMM that failed after its output was handed out (first one logged as an error).
fn fail(reason: String) {
    FAILURES.fetch_add(1, Atomic::Relaxed);
    if !GEMM_ERROR_LOGGED.swap(true, Atomic::Relaxed) {
        tracing::error!(
            "cuBLAS GEMM failed ({reason}); its output is NaN. Further failures are counted, not \
             logged; TEMPER_CUBLAS=0 uses burn's matmul"
        );
    }
}

/// Handles of devices whose cuBLAS state is ready (`None`: it failed; logged when it did).
static READY: LazyLock<Mutex<HashMap<usize, Option<DeviceHandle<Server>>>>> =
    LazyLock::new(Mutex::default);

/// The device's queue handle once its cuBLAS state exists; the first call per device creates
/// that state on the device thread and waits for it (the only blocking step).
fn ready_device(device: &CudaDevice) -> Option<DeviceHandle<Server>> {
    let mut ready = READY.lock().ok()?;
    if let Some(entry) = ready.get(&device.index) {
        return entry.clone();
    }
    let handle = DeviceHandle::<Server>::new(device.to_id());
    let index = device.index;
    let created = handle
        .submit_blocking(move |_server: &mut Server| with_device(index, |_| Ok(())).is_ok())
        .unwrap_or(false);
    let entry = created.then_some(handle);
    ready.insert(index, entry.clone());
    entry
}

static LIBRARY: OnceLock<bool> = OnceLock::new();

/// Whether libcublas can be loaded; the answer (and a failure's warning) comes once.
fn library_loaded() -> bool {
    *LIBRARY.get_or_init(|| {
        // SAFETY: only dlopens/dlcloses libcublas candidates; no symbol is used.
        let present = unsafe { blas_sys::is_culib_present() };
        if !present {
            tracing::warn!(
                "cuBLAS unavailable: libcublas could not be loaded (add its directory to \
                 LD_LIBRARY_PATH); matmuls use burn's kernels"
            );
        }
        present
    })
}

/// Per-device cuBLAS state, created on first use; an `Err` is remembered (and was logged).
type DeviceMap = HashMap<usize, Result<DeviceState, String>>;
static DEVICES: LazyLock<Mutex<DeviceMap>> = LazyLock::new(Mutex::default);

/// Runs `f` with device `index`'s state, creating it first (runs on cubecl's device thread).
fn with_device(index: usize, f: impl FnOnce(&DeviceState) -> Result<(), Skip>) -> Result<(), Skip> {
    let mut devices = DEVICES
        .lock()
        .map_err(|_| Skip::Failed("cuBLAS device state poisoned".into()))?;
    let state = devices.entry(index).or_insert_with(|| {
        let created = catch_unwind(AssertUnwindSafe(|| DeviceState::create(index)))
            .unwrap_or_else(|_| Err("panicked while loading cuBLAS/driver symbols".into()));
        match &created {
            Ok(state) => tracing::info!("cuBLAS ready on cuda:{index} ({:?})", state.ordering),
            Err(e) => {
                tracing::warn!("cuBLAS unavailable on cuda:{index}: {e}; using burn's matmul")
            }
        }
        created
    });
    match state {
        Ok(state) => f(state),
        Err(_) => Err(Skip::Unavailable),
    }
}

/// Whether the driver takes `cuCtxRecordEvent` / `cuCtxWaitEvent` (CUDA 12.5+); a missing
/// symbol panics inside cudarc, hence `catch_unwind`. The probe itself only makes later
/// work wait for work already submitted, which it would anyway.
/// `ctx` and `event` are the valid handles just created.
fn probe_context_events(ctx: cu::CUcontext, event: cu::CUevent) -> StreamOrdering {
    let probe = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` and `event` are valid handles (created by the caller).
        unsafe {
            cu::cuCtxRecordEvent(ctx, event).result()?;
            cu::cuCtxWaitEvent(ctx, event).result()
        }
    }));
    match probe {
        Ok(Ok(())) => StreamOrdering::ContextEvents,
        Ok(Err(e)) => {
            tracing::warn!(
                "cuCtxRecordEvent/cuCtxWaitEvent failed ({e:?}); cuBLAS GEMMs synchronise the host instead"
            );
            StreamOrdering::HostSync
        }
        Err(_) => {
            tracing::warn!(
                "the CUDA driver lacks cuCtxRecordEvent/cuCtxWaitEvent (CUDA < 12.5); cuBLAS GEMMs synchronise the host instead"
            );
            StreamOrdering::HostSync
        }
    }
}

/// How a GEMM on our stream is ordered against cubecl's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamOrdering {
    /// `cuCtxRecordEvent` / `cuCtxWaitEvent`: device-side, no host wait.
    ContextEvents,
    /// `cuCtxSynchronize` before, `cuStreamSynchronize` after: the host waits twice.
    HostSync,
}

/// One device's cuBLAS handle, stream, fence events and workspace.
struct DeviceState {
    /// The device's primary context: the one cubecl-cuda retains and launches into.
    ctx: cu::CUcontext,
    stream: cu::CUstream,
    handle: blas_sys::cublasHandle_t,
    before: cu::CUevent,
    after: cu::CUevent,
    ordering: StreamOrdering,
}

// SAFETY: the raw CUDA/cuBLAS handles are plain identifiers usable from any thread once the
// context is current (each use sets it); all use is serialised by the `DEVICES` mutex.
unsafe impl Send for DeviceState {}

fn driver_err(what: &str) -> impl Fn(driver::DriverError) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

fn blas_err(what: &str) -> impl Fn(blas::CublasError) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

impl DeviceState {
    /// Creates the state for device `index`, one cubecl already initialised (the handles live
    /// until the process exits).
    fn create(index: usize) -> Result<Self, String> {
        let ordinal = i32::try_from(index).map_err(|_| "device index overflows i32".to_string())?;
        let device = driver::device::get(ordinal).map_err(driver_err("cuDeviceGet"))?;
        // SAFETY: set-up calls on the valid device from above; each handle is checked before it
        // is used, and the workspace is a fresh allocation of the size cuBLAS is told.
        unsafe {
            let ctx = driver::primary_ctx::retain(device)
                .map_err(driver_err("cuDevicePrimaryCtxRetain"))?;
            driver::ctx::set_current(ctx).map_err(driver_err("cuCtxSetCurrent"))?;
            let stream = driver::stream::create(driver::stream::StreamKind::NonBlocking)
                .map_err(driver_err("cuStreamCreate"))?;
            let flags = cu::CUevent_flags::CU_EVENT_DISABLE_TIMING;
            let before = driver::event::create(flags).map_err(driver_err("cuEventCreate"))?;
            let after = driver::event::create(flags).map_err(driver_err("cuEventCreate"))?;
            let handle = blas::create_handle().map_err(blas_err("cublasCreate"))?;
            blas::set_stream(handle, stream.cast()).map_err(blas_err("cublasSetStream"))?;
            // After cublasSetStream: setting a stream resets the workspace to the default.
            let workspace =
                driver::malloc_sync(WORKSPACE_BYTES).map_err(driver_err("cuMemAlloc"))?;
            blas_sys::cublasSetWorkspace_v2(handle, workspace as *mut c_void, WORKSPACE_BYTES)
                .result()
                .map_err(blas_err("cublasSetWorkspace"))?;
            let ordering = if mode() == Mode::HostSync {
                StreamOrdering::HostSync
            } else {
                probe_context_events(ctx, before)
            };
            Ok(Self {
                ctx,
                stream,
                handle,
                before,
                after,
                ordering,
            })
        }
    }

    /// Orders, launches and fences one matmul's GEMMs. `pointers`: lhs, rhs, out device
    /// addresses; `elem`: bytes per element.
    ///
    /// # Safety
    /// The pointers must cover the extents `plan` addresses, in `data_type` elements.
    unsafe fn run(
        &self,
        plan: &GemmPlan,
        data_type: blas_sys::cudaDataType,
        elem: u64,
        pointers: [u64; 3],
    ) -> Result<(), Skip> {
        let failed = |what: &str| {
            let what = what.to_string();
            move |e: driver::DriverError| Skip::Failed(format!("{what}: {e:?}"))
        };
        // SAFETY (whole block): handles created in `create`; pointers valid per the caller.
        unsafe {
            driver::ctx::set_current(self.ctx).map_err(failed("cuCtxSetCurrent"))?;
            match self.ordering {
                StreamOrdering::ContextEvents => {
                    cu::cuCtxRecordEvent(self.ctx, self.before)
                        .result()
                        .map_err(failed("cuCtxRecordEvent"))?;
                    driver::stream::wait_event(
                        self.stream,
                        self.before,
                        cu::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
                    )
                    .map_err(failed("cuStreamWaitEvent"))?;
                }
                StreamOrdering::HostSync => {
                    driver::ctx::synchronize().map_err(failed("cuCtxSynchronize"))?;
                }
            }
            let launched = self.launch(plan, data_type, elem, pointers);
            // Fence even after a failed launch: part of it may be queued.
            let fenced = match self.ordering {
                StreamOrdering::ContextEvents => driver::event::record(self.after, self.stream)
                    .and_then(|()| cu::cuCtxWaitEvent(self.ctx, self.after).result())
                    .or_else(|_| driver::stream::synchronize(self.stream)),
                StreamOrdering::HostSync => driver::stream::synchronize(self.stream),
            };
            if let Err(e) = fenced {
                // Nothing may reuse the output while the GEMM could still write it.
                let _ = driver::ctx::synchronize();
                return Err(Skip::Failed(format!("fencing the GEMM: {e:?}")));
            }
            launched.map_err(|e| Skip::Failed(format!("cuBLAS GEMM: {e:?}")))
        }
    }

    /// Fills `bytes` at `ptr` with 0xFF (NaN in f32, f16 and bf16) after everything queued so
    /// far, blocking: a failed GEMM's output must not pass for a result.
    ///
    /// # Safety
    /// `ptr` must be a live allocation of at least `bytes` bytes.
    unsafe fn poison(&self, ptr: u64, bytes: usize) -> Result<(), Skip> {
        let failed = |e: driver::DriverError| Skip::Failed(format!("poisoning the output: {e:?}"));
        // SAFETY: valid context; `ptr`/`bytes` per the caller. The memset goes to the legacy
        // stream, which cubecl's non-blocking streams do not wait for, hence the context
        // syncs around it: done before any later burn op is launched from this thread.
        unsafe {
            driver::ctx::set_current(self.ctx).map_err(failed)?;
            driver::ctx::synchronize().map_err(failed)?;
            driver::memset_d8_sync(ptr, 0xFF, bytes).map_err(failed)?;
            driver::ctx::synchronize().map_err(failed)
        }
    }

    /// The GEMMs themselves: row-major `C = A·B` as column-major `Cᵀ = Bᵀ·Aᵀ` (see
    /// `gemm_plan`), one call per outer step. `elem`: bytes per element.
    ///
    /// # Safety
    /// As [`Self::run`].
    unsafe fn launch(
        &self,
        plan: &GemmPlan,
        data_type: blas_sys::cudaDataType,
        elem: u64,
        [a, b, c]: [u64; 3],
    ) -> Result<(), blas::CublasError> {
        use blas_sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
        let op = |transposed: bool| if transposed { CUBLAS_OP_T } else { CUBLAS_OP_N };
        // `plan` checked every dimension against i32::MAX.
        let int = |v: usize| v as i32;
        let (alpha, beta) = (1.0f32, 0.0f32);
        let alpha = &alpha as *const f32 as *const c_void;
        let beta = &beta as *const f32 as *const c_void;
        let compute = blas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F;
        let algo = blas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT;
        let (op_a, op_b) = (op(plan.rhs.transposed), op(plan.lhs.transposed));
        let out_matrix = (plan.m * plan.n) as u64;
        for o in 0..plan.outer as u64 {
            let lhs = (a + o * plan.lhs.outer_stride as u64 * elem) as *const c_void;
            let rhs = (b + o * plan.rhs.outer_stride as u64 * elem) as *const c_void;
            let out = (c + o * plan.batch as u64 * out_matrix * elem) as *mut c_void;
            // SAFETY: valid handle; pointers and extents per the caller; alpha/beta are host
            // scalars read during the call (default host pointer mode).
            unsafe {
                if plan.batch == 1 {
                    blas::gemm_ex(
                        self.handle,
                        op_a,
                        op_b,
                        int(plan.n),
                        int(plan.m),
                        int(plan.k),
                        alpha,
                        rhs,
                        data_type,
                        int(plan.rhs.ld),
                        lhs,
                        data_type,
                        int(plan.lhs.ld),
                        beta,
                        out,
                        data_type,
                        int(plan.n),
                        compute,
                        algo,
                    )?;
                } else {
                    blas::gemm_strided_batched_ex(
                        self.handle,
                        op_a,
                        op_b,
                        int(plan.n),
                        int(plan.m),
                        int(plan.k),
                        alpha,
                        rhs,
                        data_type,
                        int(plan.rhs.ld),
                        plan.rhs.batch_stride as i64,
                        lhs,
                        data_type,
                        int(plan.lhs.ld),
                        plan.lhs.batch_stride as i64,
                        beta,
                        out,
                        data_type,
                        int(plan.n),
                        out_matrix as i64,
                        int(plan.batch),
                        compute,
                        algo,
                    )?;
                }
            }
        }
        Ok(())
    }
}
