"""The model factory: specs that are refused, encoders picked by name."""

import pytest

from models.factory import (
    ENCODERS,
    EncoderSpec,
    PredictorSpec,
    WorldModelSpec,
    build_encoder,
    build_world_model,
)


def test_alignment_dim_must_fit_in_the_projected_latent():
    WorldModelSpec(projected_dim=8, alignment_dim=8)
    for bad in (0, 9):
        with pytest.raises(ValueError, match=f"alignment_dim={bad} must be in 1..projected_dim=8"):
            WorldModelSpec(projected_dim=8, alignment_dim=bad)


def test_an_encoder_is_built_by_its_name_and_an_unknown_name_is_refused():
    spec = EncoderSpec(pretrained=False, img_size=28, num_layers=1)
    assert spec.name in ENCODERS and build_encoder(spec).num_patches == 4
    with pytest.raises(ValueError, match="encoder.name='vitb16' is not an encoder this project builds"):
        build_encoder(EncoderSpec(name="vitb16", pretrained=False, img_size=28, num_layers=1))


def test_the_world_model_takes_the_specs_shapes():
    spec = WorldModelSpec(encoder=EncoderSpec(pretrained=False, img_size=28, num_layers=1),
                          predictor=PredictorSpec(depth=1, heads=5), num_hist=2, alignment_dim=4)
    m = build_world_model(spec, proprio_dim=3, state_dim=5, action_dim=7)
    assert (m.num_hist, m.frameskip) == (2, 5) and len(m.predictor.blocks) == 1



def test_the_built_encoder_must_take_the_datas_views():
    from models.dino import DinoEncoder, build_dino_encoder
    from models.factory import register_encoder
    from models.image_encoder import views_of

    two = build_encoder(EncoderSpec(pretrained=False, img_size=28, num_layers=1, views=2))
    assert views_of(two) == 2 and two.num_patches == 8

    def one_view_only(spec):  # a builder that ignores spec.views, as one written before views would
        enc = build_dino_encoder(pretrained=False, img_size=spec.img_size, num_layers=1)
        enc.name = "one_view_test"
        return enc

    register_encoder("one_view_test", DinoEncoder, one_view_only)
    try:
        build_encoder(EncoderSpec(name="one_view_test", pretrained=False, img_size=28))
        with pytest.raises(ValueError, match="takes 1 view"):
            build_encoder(EncoderSpec(name="one_view_test", pretrained=False, img_size=28, views=2))
    finally:
        ENCODERS.pop("one_view_test")
