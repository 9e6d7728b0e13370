//! Optional capture of named intermediate activations, for parity debugging against HF goldens
//! (`vision_image.block_0`, `lm.layer_1`, ...). Off by default; recording copies to the host.

use burn::prelude::*;

use crate::weights::host_f32;

/// Named host copies of intermediate tensors.
#[derive(Debug, Default)]
pub struct Trace {
    pub entries: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Trace {
    pub fn record<B: Backend, const D: usize>(
        &mut self,
        name: impl Into<String>,
        tensor: &Tensor<B, D>,
    ) {
        self.entries.push((
            name.into(),
            tensor.dims().to_vec(),
            host_f32(tensor.clone()),
        ));
    }

    pub fn get(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.entries
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, s, v)| (s.as_slice(), v.as_slice()))
    }
}

/// Records into `trace` when tracing is on.
pub(crate) fn record<B: Backend, const D: usize>(
    trace: &mut Option<&mut Trace>,
    name: impl FnOnce() -> String,
    tensor: &Tensor<B, D>,
) {
    if let Some(trace) = trace.as_deref_mut() {
        trace.record(name(), tensor);
    }
}
