"""Every block `bench` can place in an architecture, registered explicitly in one list.

Adding a block: write it in its own file (typed ``__init__(in_channels, out_channels, ...)``,
a docstring whose first line says what it is), then add one ``BlockEntry`` line here.
"""
from .a_decoder import AsymmetricDecoder
from .aspp import ASPP
from .axial import AxialBlock, AxialDW, ULiteBottleneck
from .basic import Conv, Conv1x1Head, Identity
from .cmrf import CMRF
from .conv_norm_act import ConvNormAct, create_act
from .double_conv import DoubleConv
from .gft import GlobalFeatureTransformer
from .lft import LocalFeatureTransformer
from .lraspp import LRASPP
from .multibranch import MultiBranchDW
from .registry import (
    CONTEXT,
    DECODER,
    DOWN,
    FEATURE,
    HEAD,
    UP,
    BlockEntry,
    ContractViolation,
    Registry,
)
from .repvgg import RepVGG, RepVGGDown
from .sampling import (
    AvgPool,
    ConvPoolAct,
    ConvTranspose,
    Interpolate,
    InterpolateConv,
    MaxPool,
    StridedConv,
)
from .se import SqueezeExcite

BLOCKS = Registry(
    [
        # feature blocks: (in_channels, out_channels) -> same spatial size
        BlockEntry("double_conv", DoubleConv, FEATURE),
        BlockEntry("cmrf", CMRF, FEATURE),
        BlockEntry("axial_block", AxialBlock, FEATURE),
        BlockEntry("axial_dw", AxialDW, FEATURE, same_channels=True),
        BlockEntry("conv", Conv, FEATURE),
        BlockEntry("repvgg", RepVGG, FEATURE),
        BlockEntry("multibranch_dw", MultiBranchDW, FEATURE),
        BlockEntry("se", SqueezeExcite, FEATURE, same_channels=True),
        BlockEntry("lft", LocalFeatureTransformer, FEATURE),
        # context modules (bottleneck slot; feature blocks are accepted there too)
        BlockEntry("identity", Identity, CONTEXT, same_channels=True),
        BlockEntry("ulite_bottleneck", ULiteBottleneck, CONTEXT),
        BlockEntry("lraspp", LRASPP, CONTEXT),
        BlockEntry("aspp", ASPP, CONTEXT),
        BlockEntry("gft", GlobalFeatureTransformer, CONTEXT),
        # downsampling by 2
        BlockEntry("maxpool", MaxPool, DOWN, same_channels=True),
        BlockEntry("avgpool", AvgPool, DOWN, same_channels=True),
        BlockEntry("strided_conv", StridedConv, DOWN),
        BlockEntry("conv_pool", ConvPoolAct, DOWN),
        BlockEntry("repvgg_down", RepVGGDown, DOWN),
        # upsampling by 2
        BlockEntry("interpolate", Interpolate, UP, same_channels=True),
        BlockEntry("interpolate_conv", InterpolateConv, UP),
        BlockEntry("conv_transpose", ConvTranspose, UP),
        # decoders that replace the whole U-decoder
        BlockEntry("a_decoder", AsymmetricDecoder, DECODER),
        # heads: (in_channels, classes)
        BlockEntry("conv1x1", Conv1x1Head, HEAD),
    ]
)

__all__ = [
    "BLOCKS",
    "BlockEntry",
    "ContractViolation",
    "Registry",
    "ConvNormAct",
    "create_act",
    "CMRF",
    "DoubleConv",
    "AxialDW",
    "AxialBlock",
    "ULiteBottleneck",
    "RepVGG",
    "MultiBranchDW",
    "SqueezeExcite",
    "LRASPP",
    "ASPP",
    "GlobalFeatureTransformer",
    "LocalFeatureTransformer",
    "AsymmetricDecoder",
]
