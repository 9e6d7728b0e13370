#!/usr/bin/env python3
"""(Re)generate the Qwen3-VL golden fixtures `qwen3vl-tiny-b` and `qwen3vl-tiny-moe`.

Each fixture is a tiny random-weight HF transformers model (float32, CPU, eager attention)
plus golden inputs / intermediates / logits / greedy generations, written in the same file
format and tensor naming as the pre-existing fixture `qwen3vl-tiny-a` (see its README).

Run (from the repository root):

    bash tools/golden/setup_venv.sh && .venv-golden/bin/python tools/golden/make_fixtures.py

Options: `--only NAME` (one fixture), `--out DIR` (default model/tests/data),
`--tokenizer PATH` (default .venv-golden/share/qwen3-tokenizer/tokenizer.json).

Everything is deterministic: weights come from a seeded torch.Generator, images/frames from a
seeded numpy Generator, torch runs single-threaded on CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import transformers
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerFast,
    Qwen2VLImageProcessor,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLMoeConfig,
    Qwen3VLMoeForConditionalGeneration,
    Qwen3VLProcessor,
)
from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor
from transformers.video_utils import VideoMetadata
from transformers.vision_utils import (
    get_vision_cu_seqlens,
    get_vision_interpolation_indices_and_weights,
    get_vision_position_ids,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "model" / "tests" / "data"
DEFAULT_TOKENIZER = ROOT / ".venv-golden" / "share" / "qwen3-tokenizer" / "tokenizer.json"

# Real Qwen3 special ids and the folding rule shared with qwen3vl-tiny-a.
REAL_IDS = {
    "endoftext": 151643,
    "im_start": 151644,
    "im_end": 151645,
    "vision_start": 151652,
    "vision_end": 151653,
    "image_pad": 151655,
    "video_pad": 151656,
}
FIRST_SPECIAL = 151643
GEN_TOKENS = 8
MIN_MARGIN = 0.02  # require top1-top2 > this at every greedy step (brief: > 0.01)
MIN_DISTINCT = 4  # greedy continuations must contain at least this many distinct tokens
MIN_ROUTER_GAP = 1e-3  # MoE: k-th vs (k+1)-th router probability gap at valid tokens

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def fold_id(real: int, vocab: int) -> int:
    if real >= FIRST_SPECIAL:
        return (vocab - 32) + (real - FIRST_SPECIAL)
    return real % (vocab - 33)


def folding_rule(vocab: int) -> str:
    return (
        f"special (real>={FIRST_SPECIAL}): tiny=(vocab-32)+(real-{FIRST_SPECIAL}); "
        f"regular: tiny=real % (vocab-33); vocab={vocab}"
    )


# --------------------------------------------------------------------------------------------
# Synthetic inputs
# --------------------------------------------------------------------------------------------


def synth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour gradients + a few rectangles/discs + mild noise (compresses well as PNG)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        a, b, p = rng.uniform(-1, 1, 3)
        img[..., c] = 128 + 90 * np.sin(a * yy / 9.0 + b * xx / 11.0 + 6 * p)
    for _ in range(3):
        col = rng.integers(0, 256, 3)
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        if rng.random() < 0.5:
            y1, x1 = min(h, y0 + rng.integers(4, h // 2 + 5)), min(w, x0 + rng.integers(4, w // 2 + 5))
            img[y0:y1, x0:x1] = col
        else:
            r = rng.integers(3, max(4, min(h, w) // 3))
            img[(yy - y0) ** 2 + (xx - x0) ** 2 <= r * r] = col
    img += rng.normal(0, 1.5, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def synth_clip(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """A background gradient with a square and a disc moving across the frames."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        a, b = rng.uniform(-1, 1, 2)
        base[..., c] = 120 + 80 * np.cos(a * yy / 7.0 + b * xx / 13.0 + c)
    sq_col, disc_col = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    frames = []
    for t in range(n):
        f = base.copy()
        y0 = int(4 + t * (h - 20) / max(1, n - 1))
        x0 = int(2 + t * (w - 18) / max(1, n - 1))
        f[y0 : y0 + 14, x0 : x0 + 14] = sq_col
        cy, cx = h - 10 - t * (h - 20) / max(1, n - 1), w / 2 + (w / 3) * math.sin(t)
        f[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = disc_col
        f += rng.normal(0, 1.5, f.shape)
        frames.append(np.clip(np.rint(f), 0, 255).astype(np.uint8))
    return np.stack(frames)


def save_png(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr, "RGB").save(path, optimize=True)


def load_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# --------------------------------------------------------------------------------------------
# Fixture descriptions
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    template: str  # prompt with one <|image_pad|> per image / one bare <|video_pad|> per video
    images: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)


@dataclass
class Case:
    name: str
    rows: list[Row]
    generate: bool = False


@dataclass
class ImageSpec:
    name: str
    h: int
    w: int


@dataclass
class VideoSpec:
    name: str
    frames: int
    h: int
    w: int
    fps: float


@dataclass
class FixtureSpec:
    name: str
    moe: bool
    seed: int
    text_config: dict
    vision_config: dict
    tie_word_embeddings: bool
    image_size: dict
    video_size: dict
    images: list[ImageSpec]
    videos: list[VideoSpec]
    cases: list[Case]
    init: dict  # scale knobs for the random init
    description: str


IM = "<|im_start|>"
IE = "<|im_end|>"
IMG = "<|vision_start|><|image_pad|><|vision_end|>"
VID = "<|video_pad|>"  # bare pad: the processor expands it to <ts><vs>pads<ve> per temporal patch


def chat(user: str, system: str | None = None) -> str:
    s = f"{IM}system\n{system}{IE}\n" if system else ""
    return s + f"{IM}user\n{user}{IE}\n{IM}assistant\n"


TINY_B = FixtureSpec(
    name="qwen3vl-tiny-b",
    moe=False,
    seed=20251126,
    text_config=dict(
        vocab_size=1024,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        head_dim=24,
        hidden_act="silu",
        max_position_embeddings=4096,
        rms_norm_eps=1e-6,
        attention_bias=False,
        rope_parameters=dict(
            rope_type="default", rope_theta=1000000.0, mrope_section=[4, 4, 4], mrope_interleaved=True
        ),
    ),
    vision_config=dict(
        depth=3,
        hidden_size=48,
        intermediate_size=32,
        num_heads=3,
        in_channels=3,
        patch_size=16,
        temporal_patch_size=2,
        spatial_merge_size=2,
        num_position_embeddings=64,
        out_hidden_size=48,
        deepstack_visual_indexes=[0, 2],
        hidden_act="gelu_pytorch_tanh",
    ),
    tie_word_embeddings=True,
    image_size={"shortest_edge": 2048, "longest_edge": 6144},
    video_size={"shortest_edge": 4096, "longest_edge": 65536},
    images=[
        ImageSpec("image0_64x112", 64, 112),  # rounds to 64x128 > max_pixels -> downscaled to 32x96
        ImageSpec("image1_32x80", 32, 80),  # 80/32 = 2.5: half-even rounding -> 32x64 (not 32x96)
        ImageSpec("image2_16x40", 16, 40),  # below min_pixels -> upscaled to 32x96
        ImageSpec("image3_32x64", 32, 64),  # exact multiple of 32, no resize
    ],
    videos=[
        # 8 frames at 4 fps, sampled at 2 fps -> 4 frames [0, 2, 5, 7], resized 48x64 -> 64x64
        VideoSpec("video0", frames=8, h=48, w=64, fps=4.0),
        # 3 frames at 4 fps: int(3/4*2)=1 -> clamped to min_frames 4 -> clamped to the 3 available;
        # odd count -> last frame repeated (indices 0,1,2,2), 2 temporal patches;
        # timestamps 0.125 / 0.5 s print as <0.1 seconds> <0.5 seconds> (round-half-even on %.1f)
        VideoSpec("video1", frames=3, h=32, w=32, fps=4.0),
    ],
    cases=[
        Case(
            "text",
            [
                Row(chat("Hi!")),
                Row(chat("Write a haiku about rain.")),
            ],
        ),
        Case("image", [Row(chat(IMG + "Describe this image."), images=["image0_64x112"])], generate=True),
        Case("video", [Row(chat(VID + "Describe."), videos=["video0"])], generate=True),
        Case(
            "mixed",
            [
                Row(chat(IMG + VID + "Same?"), images=["image1_32x80"], videos=["video1"]),
                Row(chat(IMG + IMG + "Compare them."), images=["image2_16x40", "image3_32x64"]),
            ],
        ),
    ],
    init=dict(embed_std=0.3, router_gain=1.0, resid_gain=3.0),
    description="Tiny random-weight `Qwen3VLForConditionalGeneration` (dense)",
)

TINY_MOE = FixtureSpec(
    name="qwen3vl-tiny-moe",
    moe=True,
    seed=31430,
    text_config=dict(
        vocab_size=1024,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        hidden_act="silu",
        max_position_embeddings=4096,
        rms_norm_eps=1e-6,
        attention_bias=False,
        num_experts=8,
        num_experts_per_tok=2,
        moe_intermediate_size=24,
        decoder_sparse_step=1,
        mlp_only_layers=[1],
        rope_parameters=dict(
            rope_type="default", rope_theta=5000000.0, mrope_section=[6, 5, 5], mrope_interleaved=True
        ),
    ),
    vision_config=dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        in_channels=3,
        patch_size=16,
        temporal_patch_size=2,
        spatial_merge_size=2,
        num_position_embeddings=16,
        out_hidden_size=64,
        deepstack_visual_indexes=[1],
        hidden_act="gelu_pytorch_tanh",
    ),
    tie_word_embeddings=False,
    image_size={"shortest_edge": 1024, "longest_edge": 1048576},
    video_size={"shortest_edge": 4096, "longest_edge": 65536},
    images=[ImageSpec("image0_64x100", 64, 100)],
    videos=[],
    cases=[
        Case(
            "text",
            [
                Row(chat("Name three primary colors.")),
                Row(chat("Explain in one sentence why the sky looks blue during the day.")),
            ],
        ),
        Case("image", [Row(chat(IMG + "What objects are in this image?"), images=["image0_64x100"])], generate=True),
    ],
    init=dict(embed_std=1.0, router_gain=3.0),
    description="Tiny random-weight `Qwen3VLMoeForConditionalGeneration` (MoE text decoder)",
)

FIXTURES = {f.name: f for f in (TINY_B, TINY_MOE)}


# --------------------------------------------------------------------------------------------
# Model construction
# --------------------------------------------------------------------------------------------


def build_config(spec: FixtureSpec):
    cls = Qwen3VLMoeConfig if spec.moe else Qwen3VLConfig
    tiny = {k: fold_id(v, spec.text_config["vocab_size"]) for k, v in REAL_IDS.items()}
    return cls(
        text_config=copy.deepcopy(spec.text_config),
        vision_config=copy.deepcopy(spec.vision_config),
        image_token_id=tiny["image_pad"],
        video_token_id=tiny["video_pad"],
        vision_start_token_id=tiny["vision_start"],
        vision_end_token_id=tiny["vision_end"],
        tie_word_embeddings=spec.tie_word_embeddings,
    )


def random_init(model: torch.nn.Module, seed: int, init: dict) -> None:
    """Overwrite every parameter (norm weights and biases included) with seeded random values.

    Parameters are visited in sorted-name order with one generator, so the result does not
    depend on module construction order. Tied parameters are visited once.
    """
    g = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            shape = p.shape

            def randn(*s):
                return torch.randn(*s, generator=g, dtype=torch.float32)

            if name.endswith("embed_tokens.weight"):
                v = randn(*shape) * init["embed_std"]
            elif name.endswith("pos_embed.weight"):
                v = randn(*shape) * 0.5
            elif "norm" in name and name.endswith(".weight"):
                # RMSNorm / LayerNorm scales: random in [0.6, 1.4] (never the identity 1.0)
                v = 0.6 + 0.8 * torch.rand(*shape, generator=g)
            elif name.endswith(".bias"):
                v = randn(*shape) * 0.1
            elif name.endswith("experts.gate_up_proj"):  # (E, 2I, D) in transformers layout
                v = randn(*shape) / math.sqrt(shape[2])
            elif name.endswith("experts.down_proj"):  # (E, D, I)
                v = randn(*shape) / math.sqrt(shape[2])
            elif name.endswith("mlp.gate.weight"):  # MoE router (E, D)
                v = randn(*shape) * init["router_gain"] / math.sqrt(shape[1])
            elif name.endswith("patch_embed.proj.weight"):  # (Dv, C, Tp, P, P)
                v = randn(*shape) / math.sqrt(float(np.prod(shape[1:])))
            elif name.endswith(".weight") and p.dim() == 2:  # Linear (out, in)
                v = randn(*shape) / math.sqrt(shape[1])
                if "language_model" in name and (name.endswith("o_proj.weight") or name.endswith("down_proj.weight")):
                    v = v * init.get("resid_gain", 1.0)  # residual-branch outputs of the decoder
            else:
                raise RuntimeError(f"no init rule for {name} {tuple(shape)}")
            p.copy_(v)


def hub_expert_layout(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers-5 in-memory layout (E,2I,D)/(E,D,I) -> official hub layout (E,D,2I)/(E,I,D)."""
    out = {}
    for k, v in sd.items():
        if k.endswith("mlp.experts.gate_up_proj") or k.endswith("mlp.experts.down_proj"):
            out[k] = v.transpose(1, 2).contiguous()
        else:
            out[k] = v.contiguous()
    return out


def hub_style_config(cfg: dict, moe: bool) -> dict:
    """transformers-5 config.json -> the layout of the (4.57-era) official hub config.json."""
    d = copy.deepcopy(cfg)
    tc = d["text_config"]
    rp = tc.pop("rope_parameters")
    tc["rope_scaling"] = {
        "mrope_interleaved": rp["mrope_interleaved"],
        "mrope_section": rp["mrope_section"],
        "rope_type": rp["rope_type"],
    }
    tc["rope_theta"] = rp["rope_theta"]
    tc["tie_word_embeddings"] = d["tie_word_embeddings"]
    if moe:
        tc["num_experts"] = tc.pop("num_local_experts")
        for k in ("sliding_window", "bos_token_id", "eos_token_id"):
            tc.pop(k, None)
    vc = d["vision_config"]
    vc.pop("rope_parameters", None)
    vc["model_type"] = "qwen3_vl_moe" if moe else "qwen3_vl"
    d["transformers_version"] = "4.57.0"
    return d


def model_class(moe: bool):
    return Qwen3VLMoeForConditionalGeneration if moe else Qwen3VLForConditionalGeneration


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


class Inputs:
    def __init__(self, spec: FixtureSpec, tokenizer_path: Path, fixture_dir: Path):
        self.spec = spec
        self.vocab = spec.text_config["vocab_size"]
        vc = spec.vision_config
        tok = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_path))
        common = dict(
            patch_size=vc["patch_size"],
            temporal_patch_size=vc["temporal_patch_size"],
            merge_size=vc["spatial_merge_size"],
            image_mean=[0.5, 0.5, 0.5],
            image_std=[0.5, 0.5, 0.5],
        )
        self.image_processor = Qwen2VLImageProcessor(size=dict(spec.image_size), **common)
        self.video_processor = Qwen3VLVideoProcessor(
            size=dict(spec.video_size), fps=2, min_frames=4, max_frames=768, cap_pixels_per_frame=False, **common
        )
        self.proc = Qwen3VLProcessor(
            image_processor=self.image_processor, tokenizer=tok, video_processor=self.video_processor
        )
        self.tok = tok
        self.dir = fixture_dir
        self.images: dict[str, np.ndarray] = {}
        self.image_files: dict[str, str] = {}
        self.videos: dict[str, np.ndarray] = {}
        self.video_files: dict[str, list[str]] = {}
        self.video_specs = {v.name: v for v in spec.videos}
        rng = np.random.default_rng(spec.seed)
        for im in spec.images:
            fn = f"{im.name}.png"
            save_png(synth_image(rng, im.h, im.w), fixture_dir / fn)
            self.images[im.name] = load_png(fixture_dir / fn)  # feed exactly what the PNG holds
            self.image_files[im.name] = fn
        for vs in spec.videos:
            clip = synth_clip(rng, vs.frames, vs.h, vs.w)
            names = []
            for t in range(vs.frames):
                fn = f"{vs.name}_frame{t}_{vs.h}x{vs.w}.png"
                save_png(clip[t], fixture_dir / fn)
                names.append(fn)
            self.videos[vs.name] = np.stack([load_png(fixture_dir / n) for n in names])
            self.video_files[vs.name] = names

    def metadata(self, name: str) -> VideoMetadata:
        vs = self.video_specs[name]
        return VideoMetadata(
            total_num_frames=vs.frames, fps=vs.fps, width=vs.w, height=vs.h, duration=vs.frames / vs.fps
        )

    def video_info(self, name: str) -> dict:
        vs = self.video_specs[name]
        md = self.metadata(name)
        idx = self.video_processor.sample_frames(md).tolist()
        ts = self.proc._calculate_timestamps(list(idx), vs.fps, self.video_processor.temporal_patch_size)
        out = self.video_processor(
            videos=[self.videos[name]], video_metadata=[self.metadata(name)], return_tensors="pt"
        )
        grid = out["video_grid_thw"][0].tolist()
        P = self.spec.vision_config["patch_size"]
        return {
            "name": name,
            "source_frames": self.video_files[name],
            "source_total_frames": vs.frames,
            "source_fps": vs.fps,
            "source_hw": [vs.h, vs.w],
            "target_fps": self.video_processor.fps,
            "sampled_frame_indices": idx,
            # frame count padded to a multiple of temporal_patch_size by repeating the last frame
            "padded_frame_indices": idx + [idx[-1]] * (-len(idx) % self.video_processor.temporal_patch_size),
            "timestamps_seconds": ts,
            "timestamp_strings": [f"<{t:.1f} seconds>" for t in ts],
            "resized_hw": [grid[1] * P, grid[2] * P],
            "grid_thw": grid,
        }

    def image_info(self, name: str) -> dict:
        out = self.image_processor(images=[self.images[name]], return_tensors="pt")
        grid = out["image_grid_thw"][0].tolist()
        P = self.spec.vision_config["patch_size"]
        h, w = self.images[name].shape[:2]
        return {
            "name": name,
            "file": self.image_files[name],
            "source_hw": [h, w],
            "resized_hw": [grid[1] * P, grid[2] * P],
            "grid_thw": grid,
        }

    def build(self, case: Case) -> tuple[dict, dict]:
        """Returns (model inputs incl. real ids, case metadata)."""
        rows_real, rows_mm = [], []
        pv, pg, vv, vg = [], [], [], []
        texts = []
        for row in case.rows:
            kw = {}
            if row.images:
                kw["images"] = [self.images[n] for n in row.images]
            if row.videos:
                kw["videos"] = [self.videos[n] for n in row.videos]
                kw["video_metadata"] = [self.metadata(n) for n in row.videos]
            out = self.proc(text=[row.template], return_tensors="pt", **kw)
            ids = out["input_ids"][0]
            rows_real.append(ids)
            rows_mm.append(out["mm_token_type_ids"][0])
            texts.append(self.tok.decode(ids.tolist()))
            if row.images:
                pv.append(out["pixel_values"])
                pg.append(out["image_grid_thw"])
            if row.videos:
                vv.append(out["pixel_values_videos"])
                vg.append(out["video_grid_thw"])
        L = max(len(r) for r in rows_real)
        B = len(rows_real)
        real = torch.full((B, L), REAL_IDS["endoftext"], dtype=torch.long)
        mask = torch.zeros((B, L), dtype=torch.long)
        mm = torch.zeros((B, L), dtype=torch.long)
        for b, (r, m) in enumerate(zip(rows_real, rows_mm)):
            real[b, L - len(r) :] = r
            mask[b, L - len(r) :] = 1
            mm[b, L - len(r) :] = m
        ids = real.clone().apply_(lambda x: fold_id(x, self.vocab))
        # sanity: folded special ids and the processor's token types agree
        tiny_img, tiny_vid = fold_id(REAL_IDS["image_pad"], self.vocab), fold_id(REAL_IDS["video_pad"], self.vocab)
        expect_mm = (ids == tiny_img).long() + 2 * (ids == tiny_vid).long()
        assert torch.equal(expect_mm, mm), "mm_token_type_ids mismatch"
        assert ((ids == tiny_img) | (ids == tiny_vid)).sum() == ((real == 151655) | (real == 151656)).sum()
        inputs = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": mm, "real_input_ids": real}
        if pv:
            inputs["pixel_values"] = torch.cat(pv)
            inputs["image_grid_thw"] = torch.cat(pg)
        if vv:
            inputs["pixel_values_videos"] = torch.cat(vv)
            inputs["video_grid_thw"] = torch.cat(vg)
        meta = {
            "templates": [r.template for r in case.rows],
            "texts": texts,
            "batch": B,
            "seq_len": L,
            "valid_lengths": mask.sum(1).tolist(),
        }
        imgs = [n for r in case.rows for n in r.images]
        vids = [n for r in case.rows for n in r.videos]
        if imgs:
            meta["images"] = [self.image_info(n) for n in imgs]
        if vids:
            meta["videos"] = [self.video_info(n) for n in vids]
        return inputs, meta


# --------------------------------------------------------------------------------------------
# Running the model
# --------------------------------------------------------------------------------------------

MODEL_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw",
              "pixel_values_videos", "video_grid_thw")


def model_inputs(inp: dict) -> dict:
    return {k: inp[k] for k in MODEL_KEYS if k in inp}


def rope_index(model, inp: dict):
    return model.model.get_rope_index(
        inp["input_ids"],
        mm_token_type_ids=inp["mm_token_type_ids"],
        image_grid_thw=inp.get("image_grid_thw"),
        video_grid_thw=inp.get("video_grid_thw"),
        attention_mask=inp["attention_mask"],
    )


def vision_static(model, grid: torch.Tensor) -> dict:
    v = model.model.visual
    idx, w = get_vision_interpolation_indices_and_weights(
        grid,
        num_grid_per_side=v.num_grid_per_side,
        mode=v.interpolation_mode,
        align_corners=v.interpolation_align_corners,
        spatial_merge_size=v.config.spatial_merge_size,
    )
    return {
        "pos_interp_indices": idx.long(),
        "pos_interp_weights": w.float(),
        "rope_pos_ids": get_vision_position_ids(grid, v.spatial_merge_size).long(),
        "cu_seqlens": get_vision_cu_seqlens(grid).long(),
    }


def forward_with_intermediates(model, inp: dict, position_ids: torch.Tensor, moe: bool) -> dict:
    rec: dict[str, list] = {}
    hooks = []

    def put(key, val):
        rec.setdefault(key, []).append(val.detach().clone())

    vis = model.model.visual
    hooks.append(vis.patch_embed.register_forward_hook(lambda m, a, o: put("patch_embed", o)))
    hooks.append(vis.blocks[0].register_forward_pre_hook(lambda m, a: put("embed", a[0])))
    for i, blk in enumerate(vis.blocks):
        hooks.append(blk.register_forward_hook(lambda m, a, o, i=i: put(f"block_{i}", o)))
    hooks.append(vis.merger.register_forward_hook(lambda m, a, o: put("merger", o)))
    for j, ds in enumerate(vis.deepstack_merger_list):
        hooks.append(ds.register_forward_hook(lambda m, a, o, j=j: put(f"deepstack_{j}", o)))
    hooks.append(vis.register_forward_pre_hook(lambda m, a, k: put("vis_grid", k["grid_thw"]), with_kwargs=True))

    lm = model.model.language_model
    hooks.append(lm.layers[0].register_forward_pre_hook(lambda m, a, k: put("lm_in", a[0] if a else k["hidden_states"]), with_kwargs=True))
    for i, layer in enumerate(lm.layers):
        hooks.append(layer.register_forward_hook(lambda m, a, o, i=i: put(f"lm_layer_{i}", o)))
        if moe and hasattr(layer.mlp, "gate"):

            def router_hook(m, a, o, i=i):
                put(f"router_idx_{i}", o[2])
                put(f"router_w_{i}", o[1])
                put(f"router_logits_{i}", o[0])

            hooks.append(layer.mlp.gate.register_forward_hook(router_hook))
    hooks.append(lm.norm.register_forward_hook(lambda m, a, o: put("final_norm", o)))
    try:
        with torch.no_grad():
            out = model(**model_inputs(inp), position_ids=position_ids, use_cache=False)
    finally:
        for h in hooks:
            h.remove()

    res = {"logits": out.logits.detach().clone()}
    # vision calls: image call first (if any), then video call (if any)
    modalities = []
    if "pixel_values" in inp:
        modalities.append(("vision_image", inp["image_grid_thw"]))
    if "pixel_values_videos" in inp:
        modalities.append(("vision_video", inp["video_grid_thw"]))
    assert len(rec.get("vis_grid", [])) == len(modalities)
    for call, (prefix, grid) in enumerate(modalities):
        assert torch.equal(rec["vis_grid"][call], grid)
        for k, v in vision_static(model, grid).items():
            res[f"{prefix}.{k}"] = v
        for k in ["patch_embed", "embed", "merger"] + [f"block_{i}" for i in range(len(vis.blocks))] + [
            f"deepstack_{j}" for j in range(len(vis.deepstack_merger_list))
        ]:
            res[f"{prefix}.{k}"] = rec[k][call]
    assert len(rec["lm_in"]) == 1
    res["lm.inputs_embeds"] = rec["lm_in"][0]
    for i in range(len(lm.layers)):
        res[f"lm.layer_{i}"] = rec[f"lm_layer_{i}"][0]
        if f"router_idx_{i}" in rec:
            res[f"lm.layer_{i}.router_topk_idx"] = rec[f"router_idx_{i}"][0].long()
            res[f"lm.layer_{i}.router_topk_weight"] = rec[f"router_w_{i}"][0].float()
            res[f"_router_logits_{i}"] = rec[f"router_logits_{i}"][0]
    res["lm.final_norm"] = rec["final_norm"][0]
    return res


def plain_logits(model, inp: dict, position_ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(**model_inputs(inp), position_ids=position_ids, use_cache=False).logits


def masked_max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.bool()
    return (a[m] - b[m]).abs().max().item()


def greedy(model, inp: dict, n: int, vocab: int) -> dict:
    """transformers generate (KV cache) checked against a cache-free argmax loop."""
    pad = fold_id(REAL_IDS["endoftext"], vocab)
    gc = GenerationConfig(do_sample=False, max_new_tokens=n, min_new_tokens=n, eos_token_id=None,
                          pad_token_id=pad, bos_token_id=None)
    with torch.no_grad():
        out = model.generate(**model_inputs(inp), generation_config=gc)
    L = inp["input_ids"].shape[1]
    gen = out[:, L:].clone()
    assert gen.shape == (1, n), gen.shape

    seq = inp["input_ids"].clone()
    margins, loop_ids = [], []
    for _ in range(n):
        cur = dict(inp)
        cur["input_ids"] = seq
        cur["attention_mask"] = torch.ones_like(seq)
        cur["mm_token_type_ids"] = torch.cat(
            [inp["mm_token_type_ids"], torch.zeros((1, seq.shape[1] - L), dtype=torch.long)], dim=1
        )
        pos, _ = rope_index(model, cur)
        last = plain_logits(model, cur, pos)[0, -1]
        top = torch.topk(last, 2)
        margins.append((top.values[0] - top.values[1]).item())
        nxt = top.indices[0].item()
        loop_ids.append(nxt)
        seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
    assert loop_ids == gen[0].tolist(), f"generate {gen[0].tolist()} != cache-free loop {loop_ids}"
    full = dict(inp)
    full["input_ids"] = seq
    full["attention_mask"] = torch.ones_like(seq)
    full["mm_token_type_ids"] = torch.cat(
        [inp["mm_token_type_ids"], torch.zeros((1, n), dtype=torch.long)], dim=1
    )
    full_pos, _ = rope_index(model, full)
    return {"generated_ids": gen, "generated_full_position_ids": full_pos, "margins": margins}


# --------------------------------------------------------------------------------------------
# Fixture assembly
# --------------------------------------------------------------------------------------------


def make_fixture(spec: FixtureSpec, out_root: Path, tokenizer_path: Path, max_seed_tries: int = 200) -> dict:
    fdir = out_root / spec.name
    if fdir.exists():
        shutil.rmtree(fdir)
    fdir.mkdir(parents=True)
    inputs = Inputs(spec, tokenizer_path, fdir)
    built = {c.name: inputs.build(c) for c in spec.cases}
    cls = model_class(spec.moe)
    vocab = spec.text_config["vocab_size"]

    for attempt in range(max_seed_tries):
        seed = spec.seed + attempt
        torch.manual_seed(seed)
        config = build_config(spec)
        config._attn_implementation = "eager"
        if spec.moe:
            config._experts_implementation = "eager"
        ref = cls(config).eval()
        random_init(ref, seed, spec.init)
        problems = []
        for case in spec.cases:
            inp, _ = built[case.name]
            pos, _ = rope_index(ref, inp)
            if spec.moe:
                r = forward_with_intermediates(ref, inp, pos, True)
                valid = inp["attention_mask"].reshape(-1).bool()
                for k in [k for k in r if k.startswith("_router_logits_")]:
                    p = torch.softmax(r[k].float(), -1)[valid]
                    s = torch.sort(p, -1, descending=True).values
                    kk = spec.text_config["num_experts_per_tok"]
                    gap = (s[:, kk - 1] - s[:, kk]).min().item()
                    if gap < MIN_ROUTER_GAP:
                        problems.append(f"{case.name} {k} gap {gap:.2e}")
            if case.generate:
                g = greedy(ref, inp, GEN_TOKENS, vocab)
                if min(g["margins"]) < MIN_MARGIN:
                    problems.append(f"{case.name} margin {min(g['margins']):.4f}")
                if len(set(g["generated_ids"][0].tolist())) < MIN_DISTINCT:
                    problems.append(f"{case.name} generation too repetitive {g['generated_ids'][0].tolist()}")
        if not problems:
            break
        print(f"[{spec.name}] seed {seed} rejected: {problems}")
    else:
        raise RuntimeError("no seed satisfied the margin constraints")
    print(f"[{spec.name}] using seed {seed}")

    # ---- write the checkpoint -------------------------------------------------------------
    tmp = Path(tempfile.mkdtemp())
    try:
        ref.save_pretrained(tmp / "saved")
        saved_cfg = json.loads((tmp / "saved" / "config.json").read_text())
        saved_sd = load_file(tmp / "saved" / "model.safetensors")
        notes = {}
        if spec.moe:
            k = next(k for k in saved_sd if k.endswith("experts.gate_up_proj"))
            notes["save_pretrained_expert_layout"] = {
                "gate_up_proj": list(saved_sd[k].shape),
                "down_proj": list(saved_sd[k.replace("gate_up_proj", "down_proj")].shape),
            }
            sd = hub_expert_layout({k: v for k, v in ref.state_dict().items()})
            save_file(sd, fdir / "model.safetensors", metadata={"format": "pt"})
        else:
            shutil.copy(tmp / "saved" / "model.safetensors", fdir / "model.safetensors")
        assert ("lm_head.weight" in load_file(fdir / "model.safetensors")) == (not spec.tie_word_embeddings)
        saved_cfg.pop("transformers_version", None)
        saved_cfg = {"architectures": saved_cfg.pop("architectures"), **saved_cfg}
        saved_cfg["transformers_version"] = transformers.__version__
        (fdir / "config.json").write_text(json.dumps(saved_cfg, indent=2, sort_keys=True) + "\n")
        (fdir / "config.hub_style.json").write_text(
            json.dumps(hub_style_config(saved_cfg, spec.moe), indent=2, sort_keys=True) + "\n"
        )
        inputs.image_processor.to_json_file(fdir / "preprocessor_config.json")
        if spec.videos:
            inputs.video_processor.to_json_file(fdir / "video_preprocessor_config.json")

        # ---- load the fixture back (both config styles, eager + sdpa) -------------------------
        def load(config_name: str, attn: str, experts: str | None = "eager"):
            d = tmp / f"load_{config_name}_{attn}_{experts}"
            d.mkdir()
            shutil.copy(fdir / config_name, d / "config.json")
            (d / "model.safetensors").symlink_to(fdir / "model.safetensors")
            kw = {"experts_implementation": experts} if (spec.moe and experts) else {}
            return cls.from_pretrained(d, attn_implementation=attn, dtype=torch.float32, **kw).eval()

        eager = load("config.json", "eager")
        sdpa = load("config.json", "sdpa")
        hub = load("config.hub_style.json", "eager")
        default_experts = load("config.json", "eager", None) if spec.moe else None
        if spec.moe:
            notes["experts_implementation_for_golden"] = eager.config.text_config._experts_implementation
            notes["default_experts_implementation"] = default_experts.config.text_config._experts_implementation
        for (n1, p1), (n2, p2) in zip(sorted(ref.state_dict().items()), sorted(eager.state_dict().items())):
            assert n1 == n2 and torch.equal(p1, p2), f"reloaded parameter differs: {n1}"
    finally:
        shutil.rmtree(tmp)

    # ---- golden outputs ----------------------------------------------------------------------
    golden: dict[str, torch.Tensor] = {}
    meta_cases = {}
    for case in spec.cases:
        inp, meta = built[case.name]
        pos, deltas = rope_index(eager, inp)
        res = forward_with_intermediates(eager, inp, pos, spec.moe)
        logits = res.pop("logits")
        mask = inp["attention_mask"]
        ref_logits = plain_logits(ref, inp, pos)
        assert masked_max_diff(ref_logits, logits, mask) == 0.0, "file reload changed the logits"
        d_sdpa = masked_max_diff(plain_logits(sdpa, inp, pos), logits, mask)
        d_hub = masked_max_diff(plain_logits(hub, inp, pos), logits, mask)
        assert d_hub == 0.0, f"hub-style config gives different logits ({d_hub})"
        assert d_sdpa < 1e-4, d_sdpa
        if spec.moe:
            d_exp = masked_max_diff(plain_logits(default_experts, inp, pos), logits, mask)
            meta["max_abs_diff_default_experts_impl_vs_eager"] = d_exp
            assert d_exp < 1e-4, d_exp
        lp = torch.log_softmax(logits.double(), -1)[:, :-1].gather(-1, inp["input_ids"][:, 1:, None])[..., 0]
        c = case.name
        golden[f"{c}.input_ids"] = inp["input_ids"]
        golden[f"{c}.real_input_ids"] = inp["real_input_ids"]
        golden[f"{c}.attention_mask"] = inp["attention_mask"]
        golden[f"{c}.mm_token_type_ids"] = inp["mm_token_type_ids"]
        for k in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"):
            if k in inp:
                golden[f"{c}.{k}"] = inp[k]
        golden[f"{c}.position_ids"] = pos
        golden[f"{c}.rope_deltas"] = deltas.reshape(-1, 1).long()
        golden[f"{c}.logits"] = logits
        golden[f"{c}.token_logprobs"] = lp.float()
        for k, v in res.items():
            if not k.startswith("_"):
                golden[f"{c}.{k}"] = v
        meta["logits_std"] = logits[mask.bool()].std().item()
        meta["max_abs_diff_sdpa_vs_eager"] = d_sdpa
        if spec.moe:
            valid = mask.reshape(-1).bool()
            kk = spec.text_config["num_experts_per_tok"]
            gaps = {}
            for k in [k for k in res if k.startswith("_router_logits_")]:
                p = torch.softmax(res[k].float(), -1)[valid]
                s = torch.sort(p, -1, descending=True).values
                gaps[k.replace("_router_logits_", "layer_")] = (s[:, kk - 1] - s[:, kk]).min().item()
            meta["router_min_prob_gap_kth_vs_next_valid_tokens"] = gaps
        if case.generate:
            g = greedy(eager, inp, GEN_TOKENS, vocab)
            g_sdpa = greedy(sdpa, inp, GEN_TOKENS, vocab)
            assert torch.equal(g["generated_ids"], g_sdpa["generated_ids"]), "sdpa generation differs"
            golden[f"{c}.generated_ids"] = g["generated_ids"]
            golden[f"{c}.generated_full_position_ids"] = g["generated_full_position_ids"]
            meta["generation"] = {
                "new_token_ids": g["generated_ids"][0].tolist(),
                "top1_minus_top2_logit_per_step": g["margins"],
                "checked": "transformers generate(do_sample=False, KV cache) == cache-free argmax loop "
                "(positions from get_rope_index over prompt+generated); eager and sdpa agree",
            }
        meta_cases[c] = meta

    golden = {k: v.contiguous() for k, v in sorted(golden.items())}
    for k, v in golden.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    save_file(golden, fdir / "golden.safetensors", metadata={"format": "pt"})

    tiny_ids = {k: fold_id(v, vocab) for k, v in REAL_IDS.items()}
    cases_json = {
        "fixture": spec.name,
        "generator": "tools/golden/make_fixtures.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "torchvision": __import__("torchvision").__version__},
        "seed": seed,
        "dtype": "float32",
        "attn_implementation_for_golden": "eager (sdpa checked to agree)",
        "model_class": cls.__name__,
        "tiny_token_ids": tiny_ids,
        "real_token_ids": REAL_IDS,
        "id_folding": folding_rule(vocab),
        "video_prompt_layout": "transformers 4.57 / vLLM: per temporal patch "
        "'<t seconds><|vision_start|>' + video_pad*(h*w/4) + '<|vision_end|>' (no outer wrapper); "
        "made by putting a bare <|video_pad|> in the template and letting Qwen3VLProcessor expand it",
        "notes": notes,
        "cases": meta_cases,
    }
    (fdir / "cases.json").write_text(json.dumps(cases_json, indent=2) + "\n")
    write_readme(spec, fdir, golden, cases_json, saved_cfg)
    total = sum(p.stat().st_size for p in fdir.iterdir())
    print(f"[{spec.name}] wrote {fdir} ({total} bytes)")
    return cases_json


# --------------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------------

FILE_DESCRIPTIONS = {
    "cases.json": "per-case metadata: prompts, token-id folding rule, image/video metadata (sizes, grids, "
    "sampled frame indices, timestamps), sdpa-vs-eager diffs, generation margins",
    "config.hub_style.json": "same config in the layout of the official hub checkpoints (`rope_theta` + "
    "`rope_scaling` in text_config, no vision rope entry{moe}); loads to the same model (checked)",
    "config.json": "model config as written by transformers 5.24 `save_pretrained` (text rope under "
    "`rope_parameters`{moe5})",
    "golden.safetensors": "inputs, position ids, logits, log-probs, intermediates, generated ids (names below)",
    "model.safetensors": "all weights, float32, state_dict key names of the HF class{tied}{hub}",
    "preprocessor_config.json": "image processor config (Qwen2VLImageProcessor, torchvision backend) used to "
    "make `pixel_values`",
    "video_preprocessor_config.json": "video processor config (Qwen3VLVideoProcessor, torchvision backend) "
    "used to make `pixel_values_videos` (frame sampling at `fps`, `size` = min/max pixel volume)",
}


def describe_config(spec: FixtureSpec, cfg: dict) -> str:
    t, v = cfg["text_config"], cfg["vision_config"]
    rp = t["rope_parameters"]
    s = (
        f"Shape: text vocab {t['vocab_size']}, hidden {t['hidden_size']}, {t['num_hidden_layers']} layers, "
        f"{t['num_attention_heads']} heads, {t['num_key_value_heads']} KV heads, head_dim {t['head_dim']}"
    )
    if t["num_attention_heads"] * t["head_dim"] != t["hidden_size"]:
        s += f" (heads*head_dim = {t['num_attention_heads'] * t['head_dim']} != hidden)"
    if spec.moe:
        s += (
            f", MoE: {t['num_local_experts']} experts, top-{t['num_experts_per_tok']}, moe_intermediate_size "
            f"{t['moe_intermediate_size']}, decoder_sparse_step {t['decoder_sparse_step']}, mlp_only_layers "
            f"{t['mlp_only_layers']} (dense SwiGLU {t['intermediate_size']})"
        )
    else:
        s += f", SwiGLU {t['intermediate_size']}"
    s += (
        f", rms eps {t['rms_norm_eps']:g}, rope_theta {rp['rope_theta']:g}, mrope_section {rp['mrope_section']} "
        f"(interleaved), {'tied embeddings (top-level `tie_word_embeddings: true`, no `lm_head.weight` in the file)' if cfg['tie_word_embeddings'] else 'untied lm_head'}.\n"
    )
    S = int(round(v["num_position_embeddings"] ** 0.5))
    s += (
        f"Vision: patch {v['patch_size']}, temporal patch {v['temporal_patch_size']}, {v['in_channels']} channels, "
        f"depth {v['depth']}, hidden {v['hidden_size']}, {v['num_heads']} heads (head_dim "
        f"{v['hidden_size'] // v['num_heads']}), MLP {v['intermediate_size']} (gelu tanh), "
        f"{v['num_position_embeddings']} learned position embeddings ({S}x{S} grid), merge "
        f"{v['spatial_merge_size']}, out {v['out_hidden_size']}, deepstack_visual_indexes "
        f"{v['deepstack_visual_indexes']} (-> added after LLM layer{'s' if len(v['deepstack_visual_indexes']) > 1 else ''} "
        f"{', '.join(str(j) for j in range(len(v['deepstack_visual_indexes'])))}).\n"
    )
    return s


def write_readme(spec: FixtureSpec, fdir: Path, golden: dict, cj: dict, cfg: dict) -> None:
    tiny = cj["tiny_token_ids"]
    L = []
    L.append(f"# Fixture `{spec.name}`\n")
    sd_max = max(c["max_abs_diff_sdpa_vs_eager"] for c in cj["cases"].values())
    L.append(
        f"{spec.description} with golden outputs from\nHF transformers {transformers.__version__} / torch "
        f"{torch.__version__.split('+')[0]} (float32, CPU, eager attention; sdpa agrees to {sd_max:.1e}).\n"
        f"Generated by `tools/golden/make_fixtures.py` (seed {cj['seed']}); see `tools/golden/README.md`.\n"
    )
    L.append(describe_config(spec, cfg))
    extra = f"token embeddings N(0, {spec.init['embed_std']}^2)"
    if spec.init.get("resid_gain", 1.0) != 1.0:
        extra += f", decoder o_proj/down_proj scaled by {spec.init['resid_gain']:g}"
    if spec.moe:
        extra += f", router N(0, {spec.init['router_gain']:g}^2/D), experts N(0, 1/fan_in)"
    L.append(
        "Every parameter (including norm weights and biases) is random, so nothing is an identity\n"
        "(norm scales uniform in [0.6, 1.4], biases N(0, 0.1^2), linear weights N(0, 1/fan_in),\n"
        f"{extra}, vision pos_embed N(0, 0.5^2)).\n"
    )
    if spec.moe:
        L.append(
            "Expert weights in `model.safetensors` are in the **official hub layout**: "
            "`mlp.experts.gate_up_proj` (E, D, 2*I) with gate = first I columns, `mlp.experts.down_proj` "
            "(E, I, D), both used as `x @ W`. transformers 5.24 transposes them on load (shape-checked) and "
            f"`save_pretrained` writes its own layout (gate_up {cj['notes']['save_pretrained_expert_layout']['gate_up_proj']}, "
            f"down {cj['notes']['save_pretrained_expert_layout']['down_proj']}); the file here was checked to load "
            "back to identical parameters and logits.\n"
        )
    L.append(
        "Token ids: prompts were built as real Qwen3 chat text, tokenized with the real Qwen3\n"
        "tokenizer (`real_input_ids`), then folded into the 1024-entry vocabulary\n"
        f"(`cases.json: id_folding`). Tiny special ids: `<|endoftext|>` {tiny['endoftext']}, `<|im_start|>` "
        f"{tiny['im_start']},\n`<|im_end|>` {tiny['im_end']}, `<|vision_start|>` {tiny['vision_start']}, "
        f"`<|vision_end|>` {tiny['vision_end']}, `<|image_pad|>` {tiny['image_pad']},\n`<|video_pad|>` "
        f"{tiny['video_pad']} (config: image_token_id {cfg['image_token_id']}, video_token_id {cfg['video_token_id']},\n"
        f"vision_start_token_id {cfg['vision_start_token_id']}, vision_end_token_id {cfg['vision_end_token_id']}).\n"
    )
    seen_img, seen_vid = {}, {}
    for c in cj["cases"].values():
        for im in c.get("images", []):
            seen_img[im["name"]] = im
        for vd in c.get("videos", []):
            seen_vid[vd["name"]] = vd
    if seen_img:
        L.append(
            f"Images (processor `size` = {spec.image_size}, i.e. min/max pixel *areas*):\n"
        )
        for im in seen_img.values():
            L.append(
                f"- `{im['file']}`: {im['source_hw'][0]}x{im['source_hw'][1]} -> resized to "
                f"{im['resized_hw'][0]}x{im['resized_hw'][1]}, grid_thw {im['grid_thw']}"
            )
        L.append("")
    if seen_vid:
        L.append("Videos:\n")
        for vd in seen_vid.values():
            L.append(
                f"- `{vd['name']}`: {vd['source_total_frames']} frames {vd['source_hw'][0]}x{vd['source_hw'][1]} "
                f"(`{vd['source_frames'][0]}` ... `{vd['source_frames'][-1]}`) at source fps {vd['source_fps']:g}, "
                f"sampled at fps {vd['target_fps']} -> frame indices {vd['sampled_frame_indices']}, resized to "
                f"{vd['resized_hw'][0]}x{vd['resized_hw'][1]}, grid_thw {vd['grid_thw']}, timestamps "
                f"{' '.join('`' + s + '`' for s in vd['timestamp_strings'])} (one per temporal patch)."
            )
        L.append(
            "\nVideo prompt layout = transformers 4.57 / vLLM: each temporal patch becomes\n"
            "`<t seconds><|vision_start|>` + `<|video_pad|>`*(h*w/4) + `<|vision_end|>`, with no extra outer\n"
            "`<|vision_start|>`/`<|vision_end|>` (made by putting a bare `<|video_pad|>` in the template).\n"
        )
    L.append("## Files\n")
    L.append("| file | bytes | what |")
    L.append("|---|---|---|")
    moe_txt = ", `num_experts` instead of 5.x's `num_local_experts`" if spec.moe else ""
    moe5 = "; experts count saved as `num_local_experts`" if spec.moe else ""
    tied = "; tied: no `lm_head.weight`" if spec.tie_word_embeddings else ""
    hub = "; MoE experts in official hub layout (see above)" if spec.moe else ""
    for p in sorted(fdir.iterdir(), key=lambda p: p.name.lower()):
        if p.name == "README.md":
            continue
        if p.suffix == ".png":
            what = "raw synthetic RGB input (uint8, before resize) fed to the processor"
            if "_frame" in p.name:
                what = "raw synthetic video frame (uint8, before sampling/resize) fed to the video processor"
        else:
            what = FILE_DESCRIPTIONS[p.name].format(moe=moe_txt, moe5=moe5, tied=tied, hub=hub)
        L.append(f"| `{p.name}` | {p.stat().st_size} | {what} |")
    L.append("| `README.md` | - | this file |\n")
    L.append("## Cases\n")
    for cname, c in cj["cases"].items():
        L.append(f"### `{cname}`\n")
        L.append(
            f"- batch {c['batch']}, padded length {c['seq_len']}, valid lengths {c['valid_lengths']} (left padding; "
            f"pad id = tiny `<|endoftext|>` {tiny['endoftext']})"
        )
        for t in c["texts"]:
            t = t.replace("<|endoftext|>", "")
            L.append(f"- prompt (real-tokenizer decode, pads excluded): `{t!r}`")
        if "images" in c:
            L.append(f"- images (in `pixel_values` order): {', '.join('`' + i['file'] + '`' for i in c['images'])}")
        if "videos" in c:
            for vd in c["videos"]:
                L.append(
                    f"- video `{vd['name']}`: frames {vd['sampled_frame_indices']} of {vd['source_total_frames']}, "
                    f"timestamps {vd['timestamp_strings']}"
                )
        if "generation" in c:
            g = c["generation"]
            L.append(
                f"- greedy generation ({len(g['new_token_ids'])} new tokens): {g['new_token_ids']}; top1-top2 logit "
                f"margins [{', '.join(f'{m:.4f}' for m in g['top1_minus_top2_logit_per_step'])}]"
            )
        if "router_min_prob_gap_kth_vs_next_valid_tokens" in c:
            gaps = c["router_min_prob_gap_kth_vs_next_valid_tokens"]
            L.append(
                "- router: min gap between the k-th and (k+1)-th expert probability over valid tokens: "
                + ", ".join(f"{k} {v:.4f}" for k, v in gaps.items())
            )
        L.append(f"- sdpa vs eager max abs logit diff (valid positions): {c['max_abs_diff_sdpa_vs_eager']:.2e}\n")
        L.append("| tensor | dtype | shape |")
        L.append("|---|---|---|")
        for k in sorted(k for k in golden if k.startswith(cname + ".")):
            v = golden[k]
            dt = {torch.float32: "F32", torch.int64: "I64"}[v.dtype]
            L.append(f"| `{k}` | {dt} | {list(v.shape)} |")
        L.append("")
    L.append(NAMING)
    (fdir / "README.md").write_text("\n".join(L))


NAMING = """## Tensor naming (golden.safetensors)

All keys are `<case>.<name>`. Float tensors are float32, integer tensors int64.

- `input_ids` (B, L): tiny-vocab ids actually fed to the model (left padded).
  `real_input_ids` (B, L): the same prompt in the real Qwen3 vocabulary (before folding).
- `attention_mask` (B, L): 1 = real token, 0 = left padding.
- `mm_token_type_ids` (B, L): 0 text, 1 image pad token, 2 video pad token.
- `pixel_values` (num_patches, C*T*P*P), `image_grid_thw` (num_images, 3);
  `pixel_values_videos`, `video_grid_thw` likewise for videos. Rows are in the
  processor's order (merge-window-major, see design doc); the per-row layout is (C, T, P, P).
- `position_ids` (3, B, L): MRoPE (t, h, w) ids from `model.model.get_rope_index`; padded
  positions hold 0. `rope_deltas` (B, 1): max position + 1 - valid length.
- `logits` (B, L, vocab): full logits computed with the explicit `position_ids` above.
  Rows at padded positions are meaningless (fully masked attention rows); compare only where
  `attention_mask == 1`.
- `token_logprobs` (B, L-1): log_softmax(logits[:, t])[input_ids[:, t+1]].
- `vision_image.*` / `vision_video.*` (one vision-tower call per modality, all images of the
  case packed together; all videos likewise):
  `pos_interp_indices` / `pos_interp_weights` (N, 4): bilinear taps into the learned
  position table (row-major flattened 2-D grid) and their weights, per patch in processor order;
  `rope_pos_ids` (N, 2): (row, col) used by the vision 2-D RoPE;
  `cu_seqlens` (segments+1): attention segment boundaries (one segment per image / per video
  temporal patch); `patch_embed` (N, Dv): Conv3d output; `embed` (N, Dv): patch_embed +
  interpolated position embedding (input of block 0); `block_i` (N, Dv): output of vision
  block i; `merger` (N/4, D): final merger output (the visual token embeddings);
  `deepstack_j` (N/4, D): output of deepstack merger j (added after LLM layer j).
- `lm.inputs_embeds` (B, L, D): token embeddings with visual embeddings scattered in.
  `lm.layer_i` (B, L, D): output of decoder layer i BEFORE the DeepStack addition of that
  layer. `lm.final_norm` (B, L, D): after the final RMSNorm (input of lm_head).
- MoE only: `lm.layer_i.router_topk_idx` (B*L, k), `lm.layer_i.router_topk_weight` (B*L, k)
  (renormalised top-k softmax weights, in torch.topk order = descending prob), for the sparse
  layers only (layers in `mlp_only_layers` are dense and have none). Rows are flattened
  (batch, seq); rows at padded positions are meaningless.
- `generated_ids` (1, 8): greedy continuation (transformers `generate`, checked against a
  cache-free loop); `generated_full_position_ids` (3, 1, L+8): get_rope_index over the prompt
  plus the generated tokens (what the positions of the new tokens must be).
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(FIXTURES), action="append")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER)
    args = ap.parse_args()
    if not args.tokenizer.is_file():
        sys.exit(f"tokenizer.json not found at {args.tokenizer}; run tools/golden/setup_venv.sh first")
    for name in args.only or sorted(FIXTURES):
        make_fixture(FIXTURES[name], args.out, args.tokenizer)


if __name__ == "__main__":
    main()
