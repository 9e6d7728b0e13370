//! Checkpoint I/O: HuggingFace safetensors in (single file or sharded) and out, with the HF
//! tensor names each module writes once for load and save, and all-or-nothing output files.

pub mod output_file;
pub mod safetensors_io;
pub mod weights;
