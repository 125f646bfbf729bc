"""A second encoder added by the README's "Add an encoder" recipe alone: in a copy of the tree, ``models/toy_patch.py``
(the toy encoder below: one seeded strided conv over 8 x 8 patches), one ``register_encoder`` call appended to
``models/factory.py`` and ``conf/encoder/toy_patch.yaml``; then a debug training step takes it (``encoder=toy_patch``,
``img_size=32``: a multiple of its 8-pixel patch, not of DINOv2's 14), and here, with the same class registered through
the factory's public API, the settings check, the cache tool and the run loader read it from the registry.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re

import pytest
import torch
import torch.nn.functional as F
from _synthetic_data import make_dataset
from torch import nn

from tests._tree_copy import append, changed_files, copy_tree, run_in

pytestmark = pytest.mark.slow


class ToyPatchEncoder(nn.Module):
    """Frozen toy encoder: images [B, 3, H, W] in [0, 1] -> [B, (img_size / 8)^2, 24], seeded random weights."""

    name = "toy_patch"
    patch_size = 8
    feature_keys = ("patches",)
    emb_dim = 24

    def __init__(self, img_size: int = 32, feature_key: str = "patches", seed: int = 0):
        super().__init__()
        if img_size % self.patch_size:
            raise ValueError(f"img_size must be a multiple of {self.patch_size}, got {img_size}")
        if feature_key not in self.feature_keys:
            raise ValueError(f"feature_key must be one of {self.feature_keys}, got {feature_key!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.proj = nn.Conv2d(3, self.emb_dim, self.patch_size, stride=self.patch_size)
        self.img_size, self.feature_key = img_size, feature_key
        self.pretrained, self.weights_source = False, f"random(seed={seed})"
        weights = b"".join(p.detach().float().numpy().tobytes() for p in self.proj.parameters())
        self.weights_hash = hashlib.sha256(weights).hexdigest()[:16]
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_spec(cls, spec) -> ToyPatchEncoder:
        """The factory's builder: an ``EncoderSpec`` -> the encoder (it has no pretrained weights)."""
        if spec.pretrained:
            raise FileNotFoundError("toy_patch has no pretrained weights: encoder.pretrained=false")
        return cls(spec.img_size, spec.feature_key, spec.seed)

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    def cache_key(self) -> str:
        return f"{self.name}-{self.weights_hash}-{self.img_size}-{self.feature_key}"

    def train(self, mode: bool = True) -> ToyPatchEncoder:
        return super().train(False)  # always frozen

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        return self.proj(x).flatten(2).transpose(1, 2)


MODULE = ('"""A toy frozen encoder (tests/test_add_an_encoder.py)."""\n\nfrom __future__ import annotations\n\n'
          "import hashlib\n\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"
          + inspect.getsource(ToyPatchEncoder))
FACTORY_ENTRY = '''

from models.toy_patch import ToyPatchEncoder  # noqa: E402

register_encoder("toy_patch", ToyPatchEncoder, ToyPatchEncoder.from_spec)
'''
CONFIG = "name: toy_patch\npretrained: false\nweights_path: null\nseed: 0\nfeature_key: patches\ncache: true\n"


@pytest.fixture
def toy_registered():
    """``toy_patch`` in this process's registry too (as the copy's factory registers it), removed afterwards."""
    from models.factory import ENCODERS, register_encoder

    register_encoder("toy_patch", ToyPatchEncoder, ToyPatchEncoder.from_spec)
    yield
    ENCODERS.pop("toy_patch")


def test_an_encoder_is_one_module_one_registration_and_one_config_file(tmp_path, toy_registered, capsys):
    from models.image_encoder import ImageEncoder
    from training.cache_features import main as cache_features
    from training.run_dir.run_loading import load_world_model
    from training.settings_check import BadSetting, check_training_settings

    copy = copy_tree(tmp_path / "tree")
    (copy / "models" / "toy_patch.py").write_text(MODULE)
    append(copy / "models" / "factory.py", FACTORY_ENTRY)
    (copy / "conf" / "encoder" / "toy_patch.yaml").write_text(CONFIG)
    assert changed_files(copy) == ["conf/encoder/toy_patch.yaml", "models/factory.py", "models/toy_patch.py"]
    data = make_dataset(tmp_path / "data", n_episodes=4, t_max=24, size=28)
    run = tmp_path / "run"
    run_in(copy, ["train_robomimic_compress.py", "env=demo", f"env.data_path={data}", "encoder=toy_patch",
                  "img_size=32", "debug=true", "training.epochs=1", "training.batch_size=4", "wandb.mode=disabled",
                  "action_prior.train=false", "cost_to_go.train=false", "gpu.auto_select=false",
                  f"hydra.run.dir={run}"])
    info = json.loads((run / "run_info.json").read_text())
    assert info["config"]["encoder"]["name"] == "toy_patch" and info["encoder"]["encoder_name"] == "toy_patch"
    [cache] = (data / "feature_cache").iterdir()  # training filled the cache with the toy's features
    assert cache.name.startswith("toy_patch-") and cache.name.endswith("-32-patches")

    # this process: the same class through the public API, read by the checks, the cache tool and the loader
    enc = ToyPatchEncoder(32)
    assert isinstance(enc, ImageEncoder) and enc(torch.rand(2, 3, 28, 28)).shape == (2, 16, 24)
    check_training_settings({"encoder": {"name": "toy_patch", "feature_key": "patches"}, "img_size": 32})
    with pytest.raises(BadSetting, match=re.escape("img_size=28 is not a multiple of the encoder's 8-pixel patch "
                                                   "(e.g. 24 or 32)")):
        check_training_settings({"encoder": {"name": "toy_patch"}, "img_size": 28})
    with pytest.raises(BadSetting, match="encoder.feature_key='x_norm_patchtokens' is not one of patches"):
        check_training_settings({"encoder": {"name": "toy_patch", "feature_key": "x_norm_patchtokens"}})
    assert cache_features(["--data", str(data), "--encoder", "toy_patch", "--img-size", "32", "--random-encoder",
                           "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip() == str(cache)  # the tool's key is training's: the cache is reused
    model = load_world_model(run, device="cpu").model  # the run's weights hash is this build's
    assert isinstance(model.encoder, ToyPatchEncoder) and model.encoder.weights_hash == enc.weights_hash


def test_a_class_without_what_the_checks_read_is_refused():
    from models.factory import register_encoder

    with pytest.raises(TypeError, match="lacks patch_size, feature_keys, emb_dim"):
        register_encoder("bare", nn.Identity, lambda spec: nn.Identity())
