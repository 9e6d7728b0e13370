//! Float precision of a model: its dtype, and a copy of it in another dtype.
//!
//! Mixed-precision training keeps f32 master weights and runs forward and backward on a bf16
//! copy ([`Qwen3Vl::cast`]): the copy's parameters keep the masters' `ParamId`s, so its
//! gradients (widened to f32) update the masters, and the optimiser's moments stay f32. Inputs
//! made on the host (masks, rotary tables, pixels, KV caches) follow the weights' dtype, so a
//! bf16 copy runs on a device whose default float type is still f32.

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use crate::model::Qwen3Vl;
use crate::nn::to_dtype;

/// Casts every float parameter to one dtype, keeping ids and `require_grad`.
#[derive(Debug, Clone, Copy)]
pub struct CastFloats(pub FloatDType);

impl<B: Backend> ModuleMapper<B> for CastFloats {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let dtype = DType::from(self.0);
        param.map(|tensor| to_dtype(tensor, dtype))
    }
}

impl<B: Backend> Qwen3Vl<B> {
    /// The float dtype of the weights (and so of the activations and KV cache).
    pub fn float_dtype(&self) -> DType {
        self.language.embed_tokens.val().dtype()
    }

    /// This model with every float parameter in `dtype` (a no-op copy when it already is).
    /// Cheap to call once per optimiser step: one cast per parameter.
    pub fn cast(&self, dtype: FloatDType) -> Self {
        self.clone().map(&mut CastFloats(dtype))
    }
}
