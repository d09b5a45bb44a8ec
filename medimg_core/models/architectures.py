"""Model architectures, built by name from plain arguments saved in the checkpoint.

Every model exposes `features(x) -> N x D` (the penultimate layer, for embeddings and the
out-of-distribution score), `head` (the final linear layer) and a `cam_layer` name that
`get_submodule` resolves for Grad-CAM. Inputs are N x 1 x S x S floats in [0, 1].
"""
from __future__ import annotations

import torch
from torch import nn

ARCHITECTURES = ("compact-cnn", "resnet18", "resnet50")
INPUT_NORMS = {"none": "", "equalize": "histogram equalisation",
               "clahe": "CLAHE (contrast-limited adaptive histogram equalisation: 8 x 8 tiles, clip limit 2)"}


def equalize(x: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Histogram-equalise each image of an N x 1 x S x S batch in [0, 1]: every pixel becomes the share of its
    image's pixels darker than it (mid-rank of its grey level), so exposure and processing curves drop out."""
    n = x.shape[0]
    levels = (x.reshape(n, -1).clamp(0, 1) * (bins - 1)).round().long()
    counts = torch.zeros(n, bins, device=x.device).scatter_add_(1, levels, torch.ones_like(levels, dtype=torch.float32))
    below = counts.cumsum(1) - counts / 2  # pixels darker than a level, plus half of those at it
    return (below.gather(1, levels) / levels.shape[1]).reshape(x.shape).to(x.dtype)


def clahe(x: torch.Tensor, clip_limit: float = 2.0, grid: int = 8) -> torch.Tensor:
    """Contrast-limited adaptive histogram equalisation (kornia's) of each image of an N x 1 x S x S batch in [0, 1]:
    contrast evened out tile by tile, limited so noise is not amplified, in float32 whatever the autocast."""
    from kornia.enhance import equalize_clahe  # imported here: only models trained with it pay for the import

    with torch.autocast(x.device.type, enabled=False):
        return equalize_clahe(x.float().clamp(0, 1), clip_limit=clip_limit, grid_size=(grid, grid)).to(x.dtype)


class InputNorm(nn.Module):
    """The model's first step: the input as is ("none"), histogram-equalised ("equalize") or CLAHE ("clahe")."""

    def __init__(self, method: str = "none"):
        super().__init__()
        if method not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {', '.join(INPUT_NORMS)}, not {method!r}")
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "equalize":
            return equalize(x)
        return clahe(x) if self.method == "clahe" else x


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CompactCNN(nn.Module):
    """A one-conv stem, three conv blocks and global average pooling.

    Grad-CAM reads block3, at a quarter of the input resolution (16 x 16 for 64 px inputs).
    """

    cam_layer = "block3"

    def __init__(self, num_classes: int, width: int = 16, dropout: float = 0.2, input_norm: str = "none"):
        super().__init__()
        self.input_norm = InputNorm(input_norm)
        w = width
        self.block1 = nn.Sequential(_conv_bn(1, w), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(_conv_bn(w, 2 * w), _conv_bn(2 * w, 2 * w), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(_conv_bn(2 * w, 4 * w), _conv_bn(4 * w, 4 * w))
        self.block4 = nn.Sequential(nn.MaxPool2d(2), _conv_bn(4 * w, 8 * w))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(8 * w, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features, N x 8*width."""
        x = (self.input_norm(x) - 0.5) / 0.25
        return self.pool(self.block4(self.block3(self.block2(self.block1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


class TorchvisionResNet(nn.Module):
    """A torchvision ResNet with a one-channel stem, trained from scratch; its `fc` becomes `head`, and a `width`
    under 64 narrows every stage (ResNet-18's BasicBlocks only)."""

    cam_layer = "net.layer3"

    def __init__(self, net: nn.Module, width: int, dropout: float, input_norm: str):
        super().__init__()
        self.input_norm = InputNorm(input_norm)
        self.net = net
        self.net.conv1 = nn.Conv2d(1, width, 7, stride=2, padding=3, bias=False)
        if width != 64:
            narrow(self.net, width)
        self.head = self.net.fc
        self.net.fc = nn.Identity()
        self.dropout = nn.Dropout(dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features: N x 8*width for the ResNet-18, N x 2048 for the ResNet-50."""
        return self.net((self.input_norm(x) - 0.5) / 0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


class ResNet18(TorchvisionResNet):
    """torchvision ResNet-18; `width` < 64 narrows every stage (width 32: a quarter of the compute and parameters),
    built from torchvision's own BasicBlock."""

    def __init__(self, num_classes: int, width: int = 64, dropout: float = 0.0, input_norm: str = "none"):
        from torchvision.models import resnet18

        if not 8 <= width <= 64:
            raise ValueError(f"resnet18 takes a width between 8 and 64, not {width}")
        super().__init__(resnet18(num_classes=num_classes), width, dropout, input_norm)


class ResNet50(TorchvisionResNet):
    """torchvision ResNet-50 (bottleneck blocks, 23.5 M parameters) at full width only: the brief's larger
    comparison model (too large to ship: about 45 MiB in float16)."""

    def __init__(self, num_classes: int, width: int = 64, dropout: float = 0.0, input_norm: str = "none"):
        from torchvision.models import resnet50

        if width != 64:
            raise ValueError(f"resnet50 is built at full width (64) only, not {width}")
        super().__init__(resnet50(num_classes=num_classes), width, dropout, input_norm)


def narrow(net: nn.Module, width: int) -> None:
    """Rebuild a torchvision ResNet-18's stages with `width` channels in the first (torchvision's initialisation)."""
    from torchvision.models.resnet import BasicBlock

    net.bn1, net.inplanes = nn.BatchNorm2d(width), width
    for i, name in enumerate(("layer1", "layer2", "layer3", "layer4")):
        setattr(net, name, net._make_layer(BasicBlock, width * 2**i, 2, stride=1 if i == 0 else 2))
    net.fc = nn.Linear(8 * width, net.fc.out_features)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


class EnsembleHead(nn.Module):
    """The members' heads on their parts of the joined features; the mean of their logits."""

    def __init__(self, heads: list[nn.Linear]):
        super().__init__()
        self.parts = [h.in_features for h in heads]
        self.out_features = heads[0].out_features
        self._heads = heads  # a plain list: the weights are registered once, under Ensemble.members

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.stack([h(f) for h, f in zip(self._heads, features.split(self.parts, 1))]).mean(0)


class Ensemble(nn.Module):
    """Several models of one architecture (e.g. the fold models of a cross-validation) as one.

    The logits are the mean of the members' logits; the features are the members' features side by
    side, so `head(features(x)) == forward(x)` as for every other model. Grad-CAM reads every
    member's CAM layer and averages their heatmaps.
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.head = EnsembleHead([m.head for m in members])
        self.cam_layer = tuple(f"members.{i}.{m.cam_layer}" for i, m in enumerate(members))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The members' penultimate features side by side, N x (members x D)."""
        return torch.cat([m.features(x) for m in self.members], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_model(architecture: str, num_classes: int, width: int = 16, dropout: float = 0.2,
                reject: bool = False, members: int = 1, input_norm: str = "none") -> nn.Module:
    """Build an untrained model by name (see ARCHITECTURES); `members` > 1 builds an Ensemble of them.

    With `reject`, the head has one more output after the classes: 'other', for images of other kinds;
    input_norm: what the model does to every input first (INPUT_NORMS).
    """
    if members > 1:
        return Ensemble([build_model(architecture, num_classes, width, dropout, reject, input_norm=input_norm)
                         for _ in range(members)])
    outputs = num_classes + int(reject)
    if architecture == "compact-cnn":
        return CompactCNN(outputs, width, dropout, input_norm)
    if architecture == "resnet18":
        return ResNet18(outputs, width, dropout, input_norm)
    if architecture == "resnet50":
        return ResNet50(outputs, width, dropout, input_norm)
    raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")


def cam_layer_name(model: nn.Module) -> str:
    """The CAM layer as the model card names it ('block3', or 'block3 of each of 5 fold models')."""
    if isinstance(model, Ensemble):
        return f"{model.members[0].cam_layer} of each of its {len(model.members)} models"
    return model.cam_layer


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fuse_batch_norms(model: nn.Module) -> nn.Module:
    """Fold every batch norm that follows a convolution into that convolution, in place, for inference only
    (eval mode): the same outputs to about 1e-6, one pass over the activations fewer (with channels-last, about
    1.5x faster on CPU). Pairs: a Conv2d then a BatchNorm2d in a Sequential (the compact CNN, torchvision's
    downsample), and `convK`/`bnK` attributes of one module (the ResNet stem and BasicBlocks). The batch norm
    becomes an Identity, so the module layout (and the CAM layer) stays."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            for k in range(len(module) - 1):
                if isinstance(module[k], nn.Conv2d) and isinstance(module[k + 1], nn.BatchNorm2d):
                    module[k], module[k + 1] = fuse_conv_bn_eval(module[k], module[k + 1]), nn.Identity()
        for name, conv in list(module.named_children()):
            bn = getattr(module, name.replace("conv", "bn"), None) if name.startswith("conv") else None
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, name, fuse_conv_bn_eval(conv, bn))
                setattr(module, name.replace("conv", "bn"), nn.Identity())
    return model
