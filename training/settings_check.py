"""The training config's values checked before anything is written: one line per bad value.

Hydra hands the script whatever was typed (``training.epochs=abc`` is the string ``"abc"``), and a
wrong value used to surface minutes later as a traceback from deep inside the loop, after the run dir,
its logs and its normalizer were written. :func:`check_training_settings` reads each key's expected
kind and range from the tables below and raises :class:`BadSetting` naming the key. What depends on the encoder
(``img_size`` a multiple of its patch, ``encoder.feature_key`` one of its keys) is read from the class the
model factory registers under ``encoder.name``.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import OmegaConf

from models.factory import DEFAULT_ENCODER, encoder_class

# key -> smallest allowed integer
INTEGERS: dict[str, int] = {
    "training.epochs": 1, "training.batch_size": 1, "training.grad_accum": 1, "training.warmup_steps": 0,
    "training.log_every": 1, "training.val_every": 1, "training.save_every": 1, "training.num_workers": 0,
    "training.seed": 0, "num_hist": 1, "num_pred": 1, "frameskip": 1, "img_size": 1, "projected_dim": 1,
    "alignment_dim": 1, "action_emb_dim": 1, "proprio_emb_dim": 1, "predictor.depth": 1, "predictor.heads": 1,
    "action_prior.steps": 1, "training.test_seed": 0, "cost_to_go.steps": 1, "rollout_readout.steps": 1,
    "rollout_readout.horizon": 1, "rollout_readout.max_starts": 1,
}  # num_gpus and min_free_memory_gb: checked by the GPU selection (gpu_utils), which says what it needs;
# img_size: at least the encoder's patch_size (check_training_settings reads it from the encoder's class)
# key -> (lowest, highest, whether the lowest itself is allowed); None: unbounded
NUMBERS: dict[str, tuple[float | None, float | None, bool]] = {
    "training.lr": (0.0, None, False), "training.weight_decay": (0.0, None, True),
    "training.clip_grad": (0.0, None, True), "training.val_ratio": (0.0, 1.0, True),
    "training.test_ratio": (0.0, 1.0, True),
    "predictor.mlp_ratio": (0.0, None, False),
    "predictor.dropout": (0.0, 1.0, True),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "training.mixed_precision": ("no", "bf16", "fp16"),
}  # + encoder.feature_key: one of the encoder's feature_keys
FLAGS = ("debug", "training.resume", "training.grad_checkpointing", "model.decoder", "model.residual",
         "model.target_stop_grad", "action_prior.train", "cost_to_go.train", "rollout_readout.train", "gpu.auto_select")


class BadSetting(ValueError):
    """A config value of the wrong kind or out of range (the message is one line naming the key)."""


def _value(cfg: Any, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def _as_number(value: Any) -> float | None:
    """The number ``value`` stands for, as training reads it (``int(...)``, ``float(...)``: an ``${oc.env:...}``
    interpolation gives a string), or None."""
    if isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, (int, float)) else float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _check_integer(key: str, value: Any, lowest: int) -> None:
    number = _as_number(value)
    if number is None or number != int(number):
        raise BadSetting(f"{key}={value!r} is not a whole number")
    if number < lowest:
        raise BadSetting(f"{key}={value} must be >= {lowest}")


def _check_number(key: str, value: Any, bounds: tuple[float | None, float | None, bool]) -> None:
    low, high, low_ok = bounds
    value = _as_number(original := value)
    if value is None:
        raise BadSetting(f"{key}={original!r} is not a number")
    if (low is not None and (value < low or (value == low and not low_ok))) or (high is not None and value >= high):
        where = f"{'>=' if low_ok else '>'} {low}" if high is None else f"in [{low}, {high})"
        raise BadSetting(f"{key}={value} must be {where}")


def _encoder_class(cfg: Any) -> type:
    """The registered class of ``encoder.name`` (the default encoder for a config without the key)."""
    name = _value(cfg, "encoder.name")
    try:
        return encoder_class(DEFAULT_ENCODER if name is None else str(name))
    except ValueError as e:
        raise BadSetting(str(e)) from None


def check_training_settings(cfg: Any) -> None:
    """Raise :class:`BadSetting` for the first value of ``cfg`` that training could not use; keys the
    config does not hold are skipped (older runs, other entry points). ``cfg``: a DictConfig or a dict."""
    cfg = cfg if OmegaConf.is_config(cfg) else OmegaConf.create(cfg)
    encoder = _encoder_class(cfg)
    for key, lowest in {**INTEGERS, "img_size": encoder.patch_size}.items():
        if (value := _value(cfg, key)) is not None:
            _check_integer(key, value, lowest)
    for key, bounds in NUMBERS.items():
        if (value := _value(cfg, key)) is not None:
            _check_number(key, value, bounds)
    for key, allowed in {**CHOICES, "encoder.feature_key": tuple(encoder.feature_keys)}.items():
        if (value := _value(cfg, key)) is not None and str(value) not in allowed:
            raise BadSetting(f"{key}={value!r} is not one of {', '.join(allowed)}")
    for key in FLAGS:  # true / false, and 0 / 1 as bool(...) reads them
        if (value := _value(cfg, key)) is not None and not isinstance(value, bool) and value not in (0, 1):
            raise BadSetting(f"{key}={value!r} is not true or false")
    _check_shapes(cfg, encoder.patch_size)
    val, test = (_as_number(_value(cfg, f"training.{k}_ratio")) for k in ("val", "test"))
    if val is not None and test is not None and val + test >= 1:
        raise BadSetting(f"training.val_ratio + training.test_ratio = {val + test:g} leaves no training episodes "
                         "(must be < 1)")


def _check_shapes(cfg: Any, patch: int) -> None:
    """Settings that only fit together: patch grid (``patch``: the encoder's patch size), head layout, aligned dims."""
    img, heads = _as_number(_value(cfg, "img_size")), _as_number(_value(cfg, "predictor.heads"))
    img, heads = (None if v is None else int(v) for v in (img, heads))
    if img is not None and img % patch:
        raise BadSetting(f"img_size={img} is not a multiple of the encoder's {patch}-pixel patch "
                         f"(e.g. {max(patch, img // patch * patch)} or {(img // patch + 1) * patch})")
    width = int(_as_number(_value(cfg, "projected_dim")) or 0) + int(_as_number(_value(cfg, "action_emb_dim")) or 0)
    if heads is not None and width and width % heads:
        raise BadSetting(f"predictor.heads={heads} does not divide the predictor width {width} "
                         f"(projected_dim + action_emb_dim)")
    align, projected = _as_number(_value(cfg, "alignment_dim")), _as_number(_value(cfg, "projected_dim"))
    if align is not None and projected is not None and align > projected:
        raise BadSetting(f"alignment_dim={align} is larger than projected_dim={projected}")
