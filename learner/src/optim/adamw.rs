//! AdamW (Loshchilov & Hutter, arXiv 1711.05101) with decoupled weight decay, as
//! `torch.optim.AdamW` computes it, for step `t` (1-based), gradient `g` and learning rate `η`:
//!
//! ```text
//! p ← p − η·λ·p                      (decoupled decay; matrices only, see below)
//! m ← β₁·m + (1 − β₁)·g
//! v ← β₂·v + (1 − β₂)·g²
//! p ← p − η · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
//! ```
//!
//! Weight decay applies to parameters with two or more dimensions (projections, embeddings,
//! patch embeddings) and not to norms' scales and biases, as most LLM trainers configure it.
//!
//! The moments are keyed by the parameter's module path (`language.layers.0.attn.q_proj.weight`),
//! not by burn's `ParamId`, which is drawn anew whenever a model is loaded: a checkpoint's
//! optimiser state then reattaches to the right tensors after a restart. State is written to and
//! read from a safetensors file (`exp_avg.<path>`, `exp_avg_sq.<path>`, `step`).

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use temper_model::safetensors_io::{HostTensor, SafetensorsFile, write_safetensors};

use crate::error::{LearnerError, Result, non_negative, positive};

/// AdamW hyper-parameters (defaults: PyTorch's, with weight decay 0.01).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// β₁, the first-moment decay.
    pub beta1: f64,
    /// β₂, the second-moment decay.
    pub beta2: f64,
    /// ε added to the root of the second moment.
    pub eps: f64,
    /// λ, the decoupled weight decay (per unit learning rate), on matrices only.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

impl AdamWConfig {
    /// Rejects values outside their domain, naming the field under `section`.
    pub fn validate(&self, section: &'static str) -> Result<()> {
        let unit = |field: &'static str, value: f64| {
            if (0.0..1.0).contains(&value) {
                Ok(())
            } else {
                Err(LearnerError::config(
                    section,
                    field,
                    value,
                    "must be in [0, 1)",
                ))
            }
        };
        unit("beta1", self.beta1)?;
        unit("beta2", self.beta2)?;
        positive(section, "eps", self.eps)?;
        non_negative(section, "weight_decay", self.weight_decay)?;
        Ok(())
    }
}

/// The optimiser: hyper-parameters, step count and the moments of every parameter.
#[derive(Debug, Clone)]
pub struct AdamW<B: Backend> {
    config: AdamWConfig,
    step: u64,
    moments: BTreeMap<String, Moments<B>>,
}

/// First and second moments of one parameter, flattened.
#[derive(Debug, Clone)]
struct Moments<B: Backend> {
    exp_avg: Tensor<B, 1>,
    exp_avg_sq: Tensor<B, 1>,
}

impl<B: Backend> AdamW<B> {
    /// A fresh optimiser (no moments, step 0).
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            step: 0,
            moments: BTreeMap::new(),
        }
    }

    /// Optimiser steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Applies one update with learning rate `lr` to every parameter of `model` that has a
    /// gradient in `grads` (consumed); parameters without one are left as they are.
    pub fn step<AB, M>(&mut self, lr: f64, model: M, mut grads: GradientsParams) -> M
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        self.step += 1;
        let mut mapper = Update::<AB> {
            optimizer: self,
            grads: &mut grads,
            lr,
            path: Vec::new(),
        };
        model.map(&mut mapper)
    }

    /// Writes the step count and every moment to `path` (safetensors, f32).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors = vec![(
            "step".to_string(),
            HostTensor::i64(vec![1], vec![self.step as i64]),
        )];
        for (name, m) in &self.moments {
            for (prefix, tensor) in [("exp_avg", &m.exp_avg), ("exp_avg_sq", &m.exp_avg_sq)] {
                let values = temper_model::weights::host_f32(tensor.clone());
                tensors.push((
                    format!("{prefix}.{name}"),
                    HostTensor::f32(vec![values.len()], values),
                ));
            }
        }
        write_safetensors(path, &tensors, None)
            .map_err(|e| LearnerError::input("optimizer", e.to_string()))
    }

    /// Reads state written by [`save`](Self::save); moments are placed on `device`.
    pub fn load(config: AdamWConfig, path: &Path, device: &B::Device) -> Result<Self> {
        let io = |e: temper_model::ModelError| LearnerError::input("optimizer", e.to_string());
        let file = SafetensorsFile::open(path).map_err(io)?;
        let (_, step) = file.read_i64("step").map_err(io)?;
        let mut moments = BTreeMap::new();
        for name in file.names() {
            let Some(param) = name.strip_prefix("exp_avg.") else {
                continue;
            };
            let read = |key: &str| -> Result<Tensor<B, 1>> {
                let (_, values) = file.read_f32(key).map_err(io)?;
                let n = values.len();
                Ok(Tensor::from_data(TensorData::new(values, [n]), device))
            };
            moments.insert(
                param.to_string(),
                Moments {
                    exp_avg: read(&name)?,
                    exp_avg_sq: read(&format!("exp_avg_sq.{param}"))?,
                },
            );
        }
        Ok(Self {
            config,
            step: step.first().copied().unwrap_or(0).max(0) as u64,
            moments,
        })
    }
}

/// The module mapper that applies one AdamW update, tracking each parameter's path.
struct Update<'a, AB: AutodiffBackend> {
    optimizer: &'a mut AdamW<AB::InnerBackend>,
    grads: &'a mut GradientsParams,
    lr: f64,
    path: Vec<String>,
}

impl<AB: AutodiffBackend> ModuleMapper<AB> for Update<'_, AB> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<AB::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let name = self.path.join(".");
        let updated = self.optimizer.update(&name, tensor.inner(), grad, self.lr);
        let mut tensor = Tensor::from_inner(updated);
        if require_grad {
            tensor = tensor.require_grad();
        }
        Param::from_mapped_value(id, tensor, mapper)
    }
}

impl<B: Backend> AdamW<B> {
    /// The AdamW update of one parameter (see the module doc).
    fn update<const D: usize>(
        &mut self,
        name: &str,
        param: Tensor<B, D>,
        grad: Tensor<B, D>,
        lr: f64,
    ) -> Tensor<B, D> {
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        let shape = param.shape();
        let numel = shape.num_elements();
        let grad = grad.reshape([numel]);
        let moments = match self.moments.remove(name) {
            Some(m) if m.exp_avg.dims()[0] == numel => m,
            _ => Moments {
                exp_avg: grad.zeros_like(),
                exp_avg_sq: grad.zeros_like(),
            },
        };
        let exp_avg = moments.exp_avg * beta1 + grad.clone() * (1.0 - beta1);
        let exp_avg_sq = moments.exp_avg_sq * beta2 + grad.powi_scalar(2) * (1.0 - beta2);
        let t = self.step as i32;
        let bias1 = 1.0 - beta1.powi(t);
        let bias2 = 1.0 - beta2.powi(t);
        let denom = (exp_avg_sq.clone() / bias2).sqrt() + eps;
        let delta = (exp_avg.clone() / denom) * (lr / bias1);
        let decayed = if D >= 2 && weight_decay > 0.0 {
            param * (1.0 - lr * weight_decay)
        } else {
            param
        };
        self.moments.insert(
            name.to_string(),
            Moments {
                exp_avg,
                exp_avg_sq,
            },
        );
        decayed - delta.reshape(shape)
    }
}

/// Module paths of every float parameter, in visiting order (to check a checkpoint's state).
pub fn parameter_paths<B: Backend, M: Module<B>>(model: &M) -> Vec<String> {
    struct Paths {
        path: Vec<String>,
        out: Vec<String>,
    }
    impl<B: Backend> ModuleVisitor<B> for Paths {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<B, D>>) {
            self.out.push(self.path.join("."));
        }
    }
    let mut visitor = Paths {
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut visitor);
    visitor.out
}
