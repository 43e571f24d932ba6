import pytest
import timm
import torch
from safetensors.torch import save_file

from spaces import list_spaces
from trainers.errors import InputError
from trainers.models import WeightsUnavailable, count_parameters, create_model, list_models
from trainers.tasks import get_task

def every_model() -> list[tuple[str, str]]:
    """(task, model) for our own models and every model that any registered space can pick."""
    pairs = {("classify", name) for name in list_models()}
    for space in list_spaces():
        pairs |= {(space.task, name) for name in space.model_choices()}
    return sorted(pairs)


@pytest.mark.parametrize("task_name, name", every_model(), ids=[f"{t}-{n}" for t, n in every_model()])
def test_every_model_builds_and_trains_a_step(task_name, name):
    task = get_task(task_name)
    model = task.create_model(name, task.num_outputs(["a", "b", "c"]))
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    assert out.shape[:2] == (2, task.num_outputs(["a", "b", "c"]))
    out.sum().backward()
    idle = {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None}
    # segmentation_models_pytorch's EfficientNet encoders keep their classifier's last convolution, unused by the U-Net
    assert idle <= ({"encoder._conv_head.weight", "encoder._bn1.weight", "encoder._bn1.bias"} if name == "efficientnet-b0" else set())


def test_baseline_has_the_stated_parameter_count():
    assert count_parameters(create_model("baseline", 3)) == (238_793, 238_793)


def test_pretrained_weights_from_a_local_file_and_freezing(tmp_path):
    reference = timm.create_model("mobilenetv2_100", pretrained=False, num_classes=0)
    save_file(reference.state_dict(), str(tmp_path / "mobilenetv2_100.safetensors"))
    model = create_model("mobilenetv2_100", 3, pretrained=True, weights=tmp_path, trainable_blocks=2)
    for key, value in reference.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value)
    trainable, total = count_parameters(model)
    head = sum(p.numel() for p in model.head.parameters())
    # timm's last two fine-grained groups (320,000 + 886,080) and the head train; the rest is frozen
    assert trainable == 320_000 + 886_080 + head and total == 2_223_872 + head
    assert not model.backbone.conv_stem.weight.requires_grad


def test_missing_pretrained_weights_give_one_clear_error(tmp_path):
    with pytest.raises(WeightsUnavailable, match="no weights for 'resnet50' in"):
        create_model("resnet50", 3, pretrained=True, weights=tmp_path)
    with pytest.raises(WeightsUnavailable, match="pass --weights FILE_OR_FOLDER .* or turn pretraining off"):
        create_model("resnet50", 3, pretrained=True)  # offline: timm cannot fetch them


def test_unknown_model_is_named():
    with pytest.raises(InputError, match="unknown model 'resnet5000'"):
        create_model("resnet5000", 3)


def test_attention_cnn_attends_over_pool_3_and_4_and_starts_kaiming_initialised():
    from trainers.models import AttentionCNN

    model = create_model("attention_cnn", 10)
    assert model(torch.rand(4, 3, 16, 16)).shape == (4, 10)  # pools round up: 16 px works
    net = model.backbone
    assert isinstance(net, AttentionCNN) and len(net.blocks) == 5 and net.num_features == 512
    pooled, x = [], torch.rand(2, 3, 32, 32)
    for block in net.blocks:
        x = block(x)
        pooled.append(x)
    _, attention = net.attend3(pooled[2], pooled[4].mean(dim=(2, 3)))
    assert attention.shape == (2, 1, 4, 4) and torch.allclose(attention.sum(dim=(1, 2, 3)), torch.ones(2))
    first = net.blocks[0][0].weight
    assert abs(first.std().item() - (2 / (first.shape[0] * 9)) ** 0.5) < 0.05  # Kaiming normal, fan-out
