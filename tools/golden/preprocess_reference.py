#!/usr/bin/env python3
"""Reference vectors for temper-model's image/video preprocessing (model/tests/preprocess.rs).

Everything is produced by the real HF code in the golden venv (transformers 5.24,
torch 2.15, torchvision 0.29.2; see tools/golden/setup_venv.sh):

- images:   `Qwen2VLImageProcessor` (torchvision backend) -> pixel_values, image_grid_thw, and
            the uint8 image after torchvision's resize (PNG), for odd sizes, downscale, upscale,
            half-to-even rounding, identity, CLIP mean/std and an extreme aspect ratio;
- videos:   `Qwen3VLVideoProcessor` with frame sampling -> pixel_values_videos, video_grid_thw,
            sampled indices, and the timestamps `Qwen3VLProcessor` puts in the prompt;
- smart_resize (image and video variants), frame sampling, `"%.1f"` formatting and timestamp
  cases as JSON;
- a resize sweep: random uint8 images through torchvision `resize(..., antialias=True)`
  (bicubic and bilinear) at many sizes, to check the Rust resize bit for bit.

Re-run from the repository root (deterministic; rewrites model/tests/data/preprocess/):

    tools/golden/setup_venv.sh
    .venv-golden/bin/python tools/golden/preprocess_reference.py

A larger, not checked-in resize sweep (run the Rust test with the env var to use it):

    .venv-golden/bin/python tools/golden/preprocess_reference.py --sweep-only \
        --sweep-cases 5000 --sweep-max-side 160 --sweep-out /tmp/sweep
    TEMPER_PREPROCESS_SWEEP=/tmp/sweep cargo test -p temper-model --test preprocess
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import struct
from pathlib import Path

import numpy as np
import torch
import torchvision
import transformers
from PIL import Image
from safetensors.numpy import save_file
from torchvision.transforms.v2 import functional as tvF
from transformers import Qwen2VLImageProcessor
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as image_smart_resize
from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor
from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor
from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize as video_smart_resize
from transformers.video_utils import VideoMetadata

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "model" / "tests" / "data" / "preprocess"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def f64_bits(x: float) -> str:
    return struct.pack(">d", float(x)).hex()


def make_image(h: int, w: int, seed: int, noise: float = 10.0, smooth: float = 1.0) -> np.ndarray:
    """Smooth pattern + noise + saturated rectangles (exercise clamping), uint8 HWC."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) / smooth
    chans = [
        128 + 70 * np.sin(xx / (3 + 2 * c) + yy / (5 + c)) + 40 * np.cos(yy / 4 - c)
        for c in range(3)
    ]
    img = np.stack(chans, -1) + rng.normal(0, noise, (h, w, 3))
    img[h // 4 : max(h // 2, h // 4 + 1), w // 5 : max(w // 2, w // 5 + 1)] = 255
    img[h // 2 : max(3 * h // 4, h // 2 + 1), w // 2 : max(4 * w // 5, w // 2 + 1), 1] = 0
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def save_png(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode="RGB").save(path, optimize=True)


def tv_resize(hwc: np.ndarray, h: int, w: int, mode=tvF.InterpolationMode.BICUBIC) -> np.ndarray:
    t = torch.from_numpy(hwc).permute(2, 0, 1).contiguous()
    return tvF.resize(t, [h, w], interpolation=mode, antialias=True).permute(1, 2, 0).numpy()


def patchify_reference(frames: np.ndarray, mean, std, p: int, m: int, tp: int) -> np.ndarray:
    """Spec re-derivation (qwen3-vl.md §2) from uint8 frames [T,H,W,C]; used as a self-check."""
    inv = np.float32(1.0 / (1 / 255))
    mean32 = np.float32(mean) * inv
    std32 = np.float32(std) * inv
    x = (frames.astype(np.float32) - mean32) / std32  # T,H,W,C
    t, h, w, c = x.shape
    x = x.reshape(t // tp, tp, h // p // m, m, p, w // p // m, m, p, c)
    # -> gt, bh, bw, ih, iw, C, Tp, P, P
    x = x.transpose(0, 2, 5, 3, 6, 8, 1, 4, 7)
    return x.reshape(-1, c * tp * p * p)


# ---------------------------------------------------------------- images

# Cases whose pixel_values are stored in full; for the others the test checks the resized PNG
# bit for bit, the grid, and two f64 checksums of pixel_values (keeps the folder small).
FULL_TENSOR_CASES = {"a_37x53", "e_21x27_clip", "h_2x100_thin"}

IMAGE_CASES = [
    # name, h, w, seed, processor kwargs
    ("a_37x53", 37, 53, 1, dict(patch_size=16, size={"shortest_edge": 1024, "longest_edge": 1048576})),
    ("b_100x41_shrink", 100, 41, 2, dict(patch_size=8, size={"shortest_edge": 256, "longest_edge": 1024})),
    ("c_300x200_shrink", 300, 200, 3, dict(patch_size=8, size={"shortest_edge": 256, "longest_edge": 1500})),
    ("d_20x30_upscale", 20, 30, 4, dict(patch_size=4, size={"shortest_edge": 600, "longest_edge": 1048576})),
    ("e_21x27_clip", 21, 27, 5, dict(patch_size=4, size={"shortest_edge": 256, "longest_edge": 1048576},
                                     image_mean=CLIP_MEAN, image_std=CLIP_STD)),
    ("f_40x24_halfeven", 40, 24, 6, dict(patch_size=8, size={"shortest_edge": 256, "longest_edge": 1048576})),
    ("g_16x32_identity", 16, 32, 7, dict(patch_size=8, size={"shortest_edge": 256, "longest_edge": 1048576})),
    ("h_2x100_thin", 2, 100, 8, dict(patch_size=4, size={"shortest_edge": 256, "longest_edge": 1048576})),
]


def image_processor(kw: dict) -> Qwen2VLImageProcessor:
    args = dict(temporal_patch_size=2, merge_size=2, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    args.update(kw)
    return Qwen2VLImageProcessor(**args)


def gen_images(out: Path, tensors: dict) -> list:
    cases = []
    for name, h, w, seed, kw in IMAGE_CASES:
        proc = image_processor(kw)
        big = h * w > 20000  # keep the large PNG compressible
        src = make_image(h, w, seed, noise=0.0 if big else 10.0, smooth=6.0 if big else 1.0)
        save_png(src, out / "images" / f"{name}.png")
        pil = Image.open(out / "images" / f"{name}.png")  # feed exactly the stored PNG
        assert np.array_equal(np.array(pil), src)
        res = proc(images=[pil], return_tensors="pt")
        pv = res["pixel_values"].numpy()
        grid = res["image_grid_thw"][0].tolist()
        p = proc.patch_size
        th, tw = grid[1] * p, grid[2] * p
        resized = src if (th, tw) == (h, w) else tv_resize(src, th, tw)
        save_png(resized, out / "resized" / f"{name}.png")
        frames = np.stack([resized] * proc.temporal_patch_size)
        mine = patchify_reference(frames, proc.image_mean, proc.image_std, p, proc.merge_size,
                                  proc.temporal_patch_size)
        assert np.array_equal(mine.view(np.uint32), pv.view(np.uint32)), f"self-check failed: {name}"
        pv64 = pv.astype(np.float64).reshape(-1)
        checksum = {"sum": float(pv64.sum()),
                    "weighted": float((pv64 * (np.arange(pv64.size) % 997 + 1)).sum())}
        if name in FULL_TENSOR_CASES:
            tensors[f"image.{name}.pixel_values"] = pv.astype(np.float32)
        cases.append({
            "name": name,
            "input_png": f"images/{name}.png",
            "resized_png": f"resized/{name}.png",
            "input_hw": [h, w],
            "resized_hw": [th, tw],
            "grid_thw": grid,
            "pixel_values": f"image.{name}.pixel_values" if name in FULL_TENSOR_CASES else None,
            "pixel_values_shape": list(pv.shape),
            "pixel_values_checksum": checksum,
            "preprocessor_config": json.loads(proc.to_json_string()),
        })
        print(f"[image] {name}: {h}x{w} -> {th}x{tw}, grid {grid}, rows {pv.shape[0]}")
    return cases


# ---------------------------------------------------------------- videos

VIDEO_CASES = [
    # name, frames, h, w, source fps, seed, processor kwargs
    ("v1_9f_22x35_fps3", 9, 22, 35, 3.0, 11,
     dict(patch_size=8, size={"shortest_edge": 1024, "longest_edge": 25165824})),
    ("v2_11f_20x14_fps4_pad", 11, 20, 14, 4.0, 12,
     dict(patch_size=8, size={"shortest_edge": 1024, "longest_edge": 25165824})),
    ("v3_8f_40x56_fps24_cap", 8, 40, 56, 24.0, 13,
     dict(patch_size=8, size={"shortest_edge": 256, "longest_edge": 25165824},
          cap_pixels_per_frame=True, max_video_tokens=4)),
]


def video_processor(kw: dict) -> Qwen3VLVideoProcessor:
    args = dict(temporal_patch_size=2, merge_size=2, cap_pixels_per_frame=False)
    args.update(kw)
    return Qwen3VLVideoProcessor(**args)


def gen_videos(out: Path, tensors: dict) -> list:
    cases = []
    for name, n, h, w, fps, seed, kw in VIDEO_CASES:
        vp = video_processor(kw)
        frames = np.stack([make_image(h, w, seed * 100 + i, noise=4.0) for i in range(n)])
        for i, f in enumerate(frames):
            save_png(f, out / "videos" / name / f"frame_{i:03d}.png")
        res = vp(videos=[frames], video_metadata=[{"total_num_frames": n, "fps": fps}],
                 do_sample_frames=True, return_metadata=True, return_tensors="pt")
        pv = res["pixel_values_videos"].numpy()
        grid = res["video_grid_thw"][0].tolist()
        meta = res["video_metadata"][0]
        indices = [int(i) for i in meta.frames_indices]
        ts = Qwen3VLProcessor._calculate_timestamps(None, list(indices), meta.fps, vp.temporal_patch_size)
        # Self-check against the spec re-derivation.
        p = vp.patch_size
        th, tw = grid[1] * p, grid[2] * p
        sampled = np.stack([tv_resize(frames[i], th, tw) if (th, tw) != (h, w) else frames[i]
                            for i in indices])
        while len(sampled) % vp.temporal_patch_size:
            sampled = np.concatenate([sampled, sampled[-1:]])
        mine = patchify_reference(sampled, vp.image_mean, vp.image_std, p, vp.merge_size,
                                  vp.temporal_patch_size)
        assert np.array_equal(mine.view(np.uint32), pv.view(np.uint32)), f"self-check failed: {name}"
        tensors[f"video.{name}.pixel_values_videos"] = pv.astype(np.float32)
        image_cfg = json.loads(image_processor(dict(patch_size=p)).to_json_string())
        cases.append({
            "name": name,
            "frames_dir": f"videos/{name}",
            "total_frames": n,
            "frame_hw": [h, w],
            "source_fps": fps,
            "frame_indices": indices,
            "resized_hw": [th, tw],
            "grid_thw": grid,
            "timestamps_bits": [f64_bits(t) for t in ts],
            "timestamps": [float(t) for t in ts],
            "timestamp_strings": [f"<{t:.1f} seconds>" for t in ts],
            "pixel_values": f"video.{name}.pixel_values_videos",
            "preprocessor_config": image_cfg,
            "video_preprocessor_config": json.loads(vp.to_json_string()),
        })
        print(f"[video] {name}: {n}x{h}x{w}@{fps} -> idx {indices}, {th}x{tw}, grid {grid}, ts {ts}")
    return cases


# ---------------------------------------------------------------- colour modes

def write_png16(path: Path, arr: np.ndarray, color_type: int) -> None:
    """Minimal 16-bit PNG writer (PIL cannot write 16-bit RGB/RGBA/LA)."""
    import struct as st
    import zlib

    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return st.pack(">I", len(data)) + tag + data + st.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = st.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
                     + chunk(b"IEND", b""))


def gen_modes(out: Path) -> list:
    """Image files in various modes, and the RGB arrays HF makes of them two ways:
    `load.png` = `transformers.image_utils.load_image(path)` (EXIF transpose, PIL convert("RGB"),
    what processors do with a path/URL); `convert.png` = `convert_to_rgb(PIL.Image.open(path))`
    (what the processor does with an opened PIL image: alpha composited onto white)."""
    from transformers.image_transforms import convert_to_rgb
    from transformers.image_utils import load_image

    rng = np.random.default_rng(99)
    h, w = 9, 12
    rgb = make_image(h, w, 42)
    alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
    alpha[0, :4] = [0, 255, 1, 254]
    gray = rgb[..., 0]
    d = out / "modes"
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA").save(d / "rgba.png")
    Image.fromarray(np.dstack([gray, alpha]), mode="LA").save(d / "la.png")
    Image.fromarray(gray, mode="L").save(d / "l.png")
    pal = Image.fromarray(rgb, mode="RGB").quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=0)
    pal.save(d / "p.png")
    pal.save(d / "p_trns.png", transparency=3)
    Image.fromarray(rgb, mode="RGB").save(d / "rgb_trns.png", transparency=tuple(int(v) for v in rgb[1, 1]))
    Image.fromarray((gray.astype(np.uint16) * 257 + 3).astype(np.uint16)).save(d / "i16.png")
    Image.fromarray(make_image(24, 32, 43), mode="RGB").save(d / "rgb.jpg", quality=90)
    for name, ch, color_type in [("rgb16", 3, 2), ("rgba16", 4, 6), ("la16", 2, 4), ("l16", 1, 0)]:
        a = rng.integers(0, 65536, (5, 7, ch), dtype=np.uint16)
        a[0, :4] = np.array([65535, 0, 200, 255 * 257])[:, None]
        write_png16(d / f"{name}.png", a if ch > 1 else a[..., 0], color_type)
    # EXIF orientation (load_image applies it, the opened-PIL path does not).
    for orient in (3, 5, 6, 8):
        exif = Image.Exif()
        exif[0x0112] = orient
        Image.fromarray(make_image(10, 16, 50 + orient), mode="RGB").save(d / f"exif{orient}.jpg", quality=95, subsampling=0, exif=exif)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(make_image(10, 16, 60), mode="RGB").save(d / "exif6.png", exif=exif)
    cases = []
    for f in sorted(d.iterdir()):
        if ".load." in f.name or ".convert." in f.name:
            continue
        img = Image.open(f)
        converted = convert_to_rgb(img, return_numpy=True)
        loaded = np.array(load_image(str(f)))
        for arr in (converted, loaded):
            assert arr.dtype == np.uint8 and arr.shape[-1] == 3, f
        save_png(converted, d / f"{f.name}.convert.png")
        save_png(loaded, d / f"{f.name}.load.png")
        cases.append({"file": f"modes/{f.name}", "pil_mode": img.mode,
                      "convert_png": f"modes/{f.name}.convert.png", "load_png": f"modes/{f.name}.load.png"})
        print(f"[mode] {f.name}: {img.mode} {img.size} -> load {loaded.shape[:2]}")
    return cases


# ---------------------------------------------------------------- scalar cases

def gen_smart_resize() -> dict:
    rng = random.Random(7)
    img = []

    def add_img(h, w, factor, lo, hi):
        try:
            r = list(image_smart_resize(h, w, factor=factor, min_pixels=lo, max_pixels=hi))
        except ValueError:
            r = "error"
        img.append({"h": h, "w": w, "factor": factor, "min_pixels": lo, "max_pixels": hi, "expect": r})

    for factor in (16, 28, 32):
        for k in range(0, 12):  # exact .5 ties: h/factor = k + 0.5
            if factor % 2 == 0:
                add_img(factor * k + factor // 2, factor * (k + 1) + factor // 2, factor, 1, 10**12)
    for h, w in [(1, 200), (200, 1), (1, 201), (201, 1), (3, 600), (3, 601), (2, 401), (5, 999)]:
        add_img(h, w, 32, 1024, 1048576)
    for _ in range(120):
        factor = rng.choice([16, 28, 32])
        h = rng.randint(1, 6000)
        w = max(1, min(6000, int(h * math.exp(rng.uniform(-3, 3)))))
        lo = rng.choice([256, 1024, 3136, 65536, 200704])
        hi = rng.choice([16384, 1048576, 12845056, 16777216])
        add_img(h, w, factor, lo, hi)

    vid = []

    def add_vid(n, h, w, tf, factor, lo, hi):
        try:
            r = list(video_smart_resize(n, h, w, temporal_factor=tf, factor=factor, min_pixels=lo, max_pixels=hi))
        except ValueError:
            r = "error"
        vid.append({"num_frames": n, "h": h, "w": w, "temporal_factor": tf, "factor": factor,
                    "min_pixels": lo, "max_pixels": hi, "expect": r})

    for n in (1, 2, 3, 5, 7, 9):
        add_vid(n, 50, 70, 2, 32, 4096, 25165824)
    for h, w in [(14, 20), (20, 14), (7, 31), (31, 7), (1, 300), (3, 31), (10, 10), (31, 31)]:
        add_vid(6, h, w, 2, 32, 4096, 25165824)
    # Frames below `factor` are scaled up with int() truncation before rounding; add cases where
    # truncating instead of rounding (or not upscaling) would change the result.
    candidates = []
    for h in range(1, 32):
        for w in range(1, 400):
            if max(h, w) / min(h, w) > 200:
                continue
            scale = max(32 / h, 32 / w)
            alt = (round(h * scale), round(w * scale))
            if alt == (int(h * scale), int(w * scale)):
                continue
            if video_smart_resize(6, h, w, 2, 32, 4096, 25165824) != video_smart_resize(6, *alt, 2, 32, 4096, 25165824):
                candidates.append((h, w))
    for h, w in candidates[::8]:
        add_vid(6, h, w, 2, 32, 4096, 25165824)
    for _ in range(80):
        factor = rng.choice([16, 32])
        n = rng.randint(1, 800)
        h = rng.randint(1, 2000)
        w = max(1, min(4000, int(h * math.exp(rng.uniform(-2.5, 2.5)))))
        lo = rng.choice([4096, 131072])
        hi = rng.choice([786432, 25165824, 100000])
        add_vid(n, h, w, 2, factor, lo, hi)
    return {"image": img, "video": vid}


def gen_frame_sampling() -> list:
    rng = random.Random(9)
    out = []

    def add(total, fps, target, lo, hi):
        vp = Qwen3VLVideoProcessor(min_frames=lo, max_frames=hi)
        idx = vp.sample_frames(VideoMetadata(total_num_frames=total, fps=fps), fps=target)
        out.append({"total_frames": total, "source_fps": fps, "target_fps": target,
                    "min_frames": lo, "max_frames": hi, "indices": [int(i) for i in idx]})

    for total, fps in [(9, 3.0), (11, 4.0), (8, 24.0), (1, 24.0), (2, 30.0), (4, 30.0), (100, 30.0),
                       (7, 2.0), (301, 29.97), (1000, 23.976)]:
        add(total, fps, 2, 4, 768)
    for _ in range(80):
        total = rng.randint(1, 300)
        fps = rng.choice([1.0, 2.0, 3.0, 7.5, 10.0, 23.976, 24.0, 25.0, 29.97, 30.0, 59.94, 60.0])
        target = rng.choice([0.5, 1, 2, 2, 3, 4.5])
        lo, hi = rng.choice([(4, 768), (4, 768), (2, 16), (8, 8), (1, 40)])
        add(total, fps, target, lo, hi)
    return out


def gen_format() -> dict:
    rng = random.Random(5)
    values = [0.25, 1.5625, 0.05, 0.15, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 2.25, 2.75, 0.0, -0.0,
              -0.25, -0.05, -0.04, 1e-300, 5e-324, 0.04999999999999999, 0.05000000000000001, 123456.25,
              9.95, 99.95, 999.95, 1 / 3, 2 / 3, 0.1, 0.2, 0.3, 1e22, 1.7976931348623157e308, 4503599627370495.5,
              9007199254740993.0, 1e16, 0.0625, 0.1875, 3.0625, 1e-5, float("inf"), float("-inf"), float("nan")]
    for _ in range(100):
        values.append(rng.randint(0, 10**5) / rng.choice([2, 4, 8, 16, 20, 40, 100, 1000]))
    fps_list = [1, 2, 3, 4, 6, 7.5, 23.976, 24, 25, 29.97, 30, 59.94, 60]
    for _ in range(100):
        f = rng.choice(fps_list)
        a = rng.randint(0, 3000)
        b = a + rng.randint(0, 40)
        values.append((a / f + b / f) / 2)
    fmt = [{"bits": f64_bits(v), "value": repr(v), "formatted": "%.1f" % v} for v in values]

    ts = []
    for _ in range(40):
        n = rng.randint(1, 12)
        f = rng.choice(fps_list)
        idx = sorted(rng.randint(0, 500) for _ in range(n))
        tp = rng.choice([1, 2, 2, 3])
        t = Qwen3VLProcessor._calculate_timestamps(None, list(idx), f, tp)
        ts.append({"indices": idx, "fps": f, "temporal_patch_size": tp,
                   "timestamps_bits": [f64_bits(x) for x in t],
                   "strings": [f"<{x:.1f} seconds>" for x in t]})
    return {"format": fmt, "timestamps": ts}


# ---------------------------------------------------------------- resize sweep

def gen_sweep(n_cases: int, max_side: int, seed: int):
    rng = random.Random(seed)
    index, ins, outs = [], [], []
    in_off = out_off = 0
    modes = [("bicubic", tvF.InterpolationMode.BICUBIC), ("bilinear", tvF.InterpolationMode.BILINEAR)]
    fixed = [((3, 257), (2, 5)), ((256, 2), (3, 1)), ((2, 2), (37, 41)), ((1, 1), (5, 3)),
             ((1, 90), (1, 7)), ((211, 3), (2, 3)), ((24, 24), (24, 7)), ((5, 64), (40, 64))]
    k = 0
    while len(index) < n_cases:
        mode_name, mode = modes[k % 4 == 3]  # 3/4 bicubic
        if k < len(fixed):
            (h, w), (oh, ow) = fixed[k]
            mode_name, mode = modes[0]
        else:
            h, w = rng.randint(1, max_side), rng.randint(1, max_side)
            oh, ow = rng.randint(1, max_side + 12), rng.randint(1, max_side + 12)
            if rng.random() < 0.2:
                h = rng.randint(1, max_side * 8)
        k += 1
        arr = np.random.default_rng(seed * 7919 + k).integers(0, 256, (h, w, 3), dtype=np.uint8)
        if k % 3 == 0:
            arr = np.where(arr > 127, 255, 0).astype(np.uint8)
        try:
            res = tv_resize(arr, oh, ow, mode)
        except RuntimeError:  # torch asserts on a few tiny bilinear shapes
            continue
        ins.append(arr.reshape(-1))
        outs.append(np.ascontiguousarray(res).reshape(-1))
        index.append({"h": h, "w": w, "out_h": oh, "out_w": ow, "mode": mode_name,
                      "input_offset": in_off, "output_offset": out_off})
        in_off += arr.size
        out_off += res.size
    tensors = {"sweep.input": np.concatenate(ins), "sweep.output": np.concatenate(outs)}
    return index, tensors


def write_sweep(dir_: Path, n: int, max_side: int, seed: int) -> None:
    dir_.mkdir(parents=True, exist_ok=True)
    index, tensors = gen_sweep(n, max_side, seed)
    save_file(tensors, str(dir_ / "sweep.safetensors"))
    (dir_ / "sweep.json").write_text(json.dumps(index) + "\n")
    print(f"[sweep] {len(index)} cases -> {dir_}")


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--sweep-only", action="store_true", help="only write a resize sweep to --sweep-out")
    ap.add_argument("--sweep-out", type=Path, default=None)
    ap.add_argument("--sweep-cases", type=int, default=48)
    ap.add_argument("--sweep-max-side", type=int, default=16)
    ap.add_argument("--sweep-seed", type=int, default=2024)
    args = ap.parse_args()
    torch.set_num_threads(1)

    if args.sweep_only:
        write_sweep(args.sweep_out or Path("/tmp/temper-resize-sweep"), args.sweep_cases,
                    args.sweep_max_side, args.sweep_seed)
        return

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tensors: dict = {}
    images = gen_images(out, tensors)
    videos = gen_videos(out, tensors)
    save_file(tensors, str(out / "golden.safetensors"))
    write_sweep(out, args.sweep_cases, args.sweep_max_side, args.sweep_seed)
    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                "transformers": transformers.__version__, "numpy": np.__version__,
                "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    (out / "image_cases.json").write_text(json.dumps({"versions": versions, "cases": images}, indent=1) + "\n")
    (out / "video_cases.json").write_text(json.dumps({"versions": versions, "cases": videos}, indent=1) + "\n")
    (out / "modes.json").write_text(json.dumps(gen_modes(out), indent=1) + "\n")
    (out / "smart_resize.json").write_text(json.dumps(gen_smart_resize()) + "\n")
    (out / "frame_sampling.json").write_text(json.dumps(gen_frame_sampling()) + "\n")
    (out / "format.json").write_text(json.dumps(gen_format()) + "\n")
    readme = f"""# Preprocessing reference vectors

Made by `tools/golden/preprocess_reference.py` with torch {torch.__version__}, torchvision
{torchvision.__version__}, transformers {transformers.__version__} (CPU capability
{versions['cpu_capability']}); checked by `model/tests/preprocess.rs`.
Re-run from the repository root (deterministic; rewrites this folder):
`tools/golden/setup_venv.sh && .venv-golden/bin/python tools/golden/preprocess_reference.py`

| file | what |
|---|---|
| `images/*.png` | synthetic uint8 RGB inputs |
| `resized/*.png` | the same images after torchvision `resize(uint8, bicubic, antialias=True)` to the `smart_resize` size |
| `image_cases.json` | per image: processor config (HF `to_json_string`), sizes, `image_grid_thw`, tensor name |
| `videos/<case>/frame_NNN.png` | all source frames of each video |
| `video_cases.json` | per video: image + video processor configs, source fps, sampled indices, grid, timestamps (f64 bits) and prompt strings |
| `golden.safetensors` | `image.<case>.pixel_values` (f32; cases a, e, h only, the others carry checksums in `image_cases.json`), `video.<case>.pixel_values_videos` (f32) |
| `modes/*`, `modes.json` | PNG/JPEG files in other colour modes (RGBA, LA, L, P, tRNS, 16-bit, JPEG, EXIF orientation) and what HF makes of them: `<file>.load.png` = `image_utils.load_image(path)`, `<file>.convert.png` = `convert_to_rgb(PIL.Image.open(path))` |
| `smart_resize.json` | image and video `smart_resize` inputs and outputs (`"error"` where HF raises) |
| `frame_sampling.json` | `Qwen3VLVideoProcessor.sample_frames` indices |
| `format.json` | `"%.1f" % x` for tricky doubles (given as big-endian f64 hex bits) and `_calculate_timestamps` cases |
| `sweep.safetensors`, `sweep.json` | resize sweep: random uint8 HWC inputs and torchvision outputs, concatenated; the JSON gives shapes, mode and offsets |
"""
    (out / "README.md").write_text(readme)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total} bytes)")


if __name__ == "__main__":
    main()
