"""UNet: output shape, class conditioning with its "no class" label, the zero-initialised output,
and configurations that cannot work."""

import pytest
import torch
from torch import nn

from litlab.core.errors import LitlabError
from litlab.generative.models.unet import SpatialSelfAttention, UNet


def tiny_unet(**kwargs) -> UNet:
    options = {
        "in_channels": 1, "image_size": 8, "base_channels": 8, "channel_mults": (1, 2),
        "num_res_blocks": 1, "attention_resolutions": (4,), "num_heads": 2, "groups": 4,
    }  # fmt: skip
    return UNet(**{**options, **kwargs})


def randomise_output(model: UNet) -> None:
    # The output convolution starts at zero (every output 0); give it weights to compare.
    torch.manual_seed(0)
    nn.init.normal_(model.output[-1].weight, std=0.1)


@pytest.mark.parametrize(
    ("options", "shape"),
    [
        ({}, (2, 1, 8, 8)),
        ({"attention_resolutions": (8, 4), "num_res_blocks": 2}, (2, 1, 8, 8)),
        ({"in_channels": 3, "image_size": 16, "channel_mults": (1, 2, 2, 2),
          "attention_resolutions": (8,)}, (3, 3, 16, 16)),
        ({"image_size": 28, "channel_mults": (1, 2, 2), "attention_resolutions": (7,)},
         (2, 1, 28, 28)),
    ],
)  # fmt: skip
def test_output_has_the_input_shape(options, shape):
    model = tiny_unet(**options)
    x = torch.randn(shape)
    t = torch.randint(0, 1000, (shape[0],))
    assert model(x, t).shape == shape


def test_untrained_model_predicts_zero_and_every_parameter_gets_a_gradient():
    model = tiny_unet(num_classes=3)
    x = torch.randn(2, 1, 8, 8)
    t = torch.tensor([3, 900])
    out = model(x, t, torch.tensor([0, 3]))
    assert torch.equal(out, torch.zeros_like(x))
    randomise_output(model)
    model(x, t, torch.tensor([0, 3])).square().sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_class_conditioning():
    model = tiny_unet(num_classes=3, attention_resolutions=(8, 4))
    randomise_output(model)
    x = torch.randn(4, 1, 8, 8)
    t = torch.full((4,), 10)
    assert model(x, t, torch.tensor([0, 1, 2, 3])).shape == x.shape
    assert model.null_class == 3
    # None is the "no class" label for every image.
    assert torch.equal(model(x, t, None), model(x, t, torch.full((4,), 3)))
    by_class = [model(x, t, torch.full((4,), c)) for c in range(3)]
    assert not torch.allclose(by_class[0], by_class[1])
    assert not torch.allclose(by_class[1], by_class[2])


def test_timestep_changes_the_output():
    model = tiny_unet()
    randomise_output(model)
    x = torch.randn(1, 1, 8, 8)
    assert not torch.allclose(model(x, torch.tensor([0])), model(x, torch.tensor([500])))


def test_labels_for_an_unconditional_model_are_refused():
    with pytest.raises(ValueError, match="num_classes"):
        tiny_unet()(torch.randn(1, 1, 8, 8), torch.tensor([1]), torch.tensor([0]))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image_size": 30, "channel_mults": (1, 2, 2)}, "halved 2 times"),
        ({"attention_resolutions": (2,)}, r"\[2\] are not feature-map sizes"),
        ({"groups": 3}, "groups=3"),
        ({"num_heads": 3}, "num_heads=3"),
        ({"channel_mults": ()}, "at least one level"),
    ],
)
def test_impossible_configurations_are_refused(options, message):
    with pytest.raises(LitlabError, match=message):
        tiny_unet(**options)


def test_spatial_attention_is_attention_over_pixels():
    torch.manual_seed(0)
    block = SpatialSelfAttention(8, num_heads=2, groups=4)
    x = torch.randn(2, 8, 3, 5)
    tokens = block.norm(x).flatten(2).transpose(1, 2)
    reference = nn.MultiheadAttention(8, 2, batch_first=True)
    attention = block.attention
    with torch.no_grad():
        reference.in_proj_weight.copy_(
            torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight])
        )
        reference.in_proj_bias.copy_(
            torch.cat([attention.q_proj.bias, attention.k_proj.bias, attention.v_proj.bias])
        )
        reference.out_proj.load_state_dict(attention.out_proj.state_dict())
        expected = x + reference(tokens, tokens, tokens)[0].transpose(1, 2).reshape(x.shape)
        assert torch.allclose(block(x), expected, atol=1e-6)
    # Moving pixels around moves the attention output with them.
    flipped = block(x.flip(-1))
    assert torch.allclose(flipped, block(x).flip(-1), atol=1e-5)
