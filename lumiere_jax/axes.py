"""Logical axis names, in one place.

Every parameter is annotated with `nn.with_logical_partitioning(init, AXES)`
and key activations with `nn.with_logical_constraint(x, AXES)` using only the
names below. A config maps them to mesh axes (``logical_axis_rules``); without
a mesh in context the annotations are no-ops, so single-device code is
unaffected.
"""

# Activations.
BATCH = "activation_batch"  # [B] (video or image batch)
FRAMES = "activation_frames"  # [T] time axis of a video
HEIGHT = "activation_height"
WIDTH = "activation_width"
EMBED = "activation_embed"  # channels of feature maps / token width
HEADS = "activation_heads"
KV = "activation_kv"  # per-head dim
LENGTH = "activation_length"  # text tokens / flattened attention sequence

# Parameters.
CONV_H = "conv_height"  # kernel spatial dims: never sharded
CONV_W = "conv_width"
CONV_T = "conv_time"  # temporal kernel dim
IN = "embed_in"  # input features of a kernel
OUT = "embed_out"  # output features of a kernel
NORM = "norm"  # scale/bias of a norm layer
MLP = "mlp"  # hidden dim of MLPs
VOCAB = "vocab"
POS = "position"

# Shorthands for the common activation layouts (channels-last).
VIDEO = (BATCH, FRAMES, HEIGHT, WIDTH, EMBED)
IMAGE = (BATCH, HEIGHT, WIDTH, EMBED)
TOKENS = (BATCH, LENGTH, EMBED)

# Default rules for a (data, fsdp, tensor) mesh. Configs may override.
DEFAULT_RULES = (
    (BATCH, ("data", "fsdp")),
    (FRAMES, None),
    (HEIGHT, None),
    (WIDTH, None),
    (EMBED, None),
    (HEADS, "tensor"),
    (KV, None),
    (LENGTH, None),
    (CONV_H, None),
    (CONV_W, None),
    (CONV_T, None),
    (IN, "fsdp"),
    (OUT, "tensor"),
    (NORM, None),
    (MLP, "tensor"),
    (VOCAB, None),
    (POS, None),
)
