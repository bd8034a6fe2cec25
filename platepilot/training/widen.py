"""Widen a trained CRNN without changing what it reads (Net2Net-style growth).

A wider network trained from scratch would need the hours of synthetic training its narrower parent
had. Instead every layer of the parent is copied into the top-left corner of the wider layer: the new
convolution channels and LSTM units start with fresh random weights, but every weight that lets an old
unit, or the CTC head, see a new one starts at zero. The wider network therefore reads exactly as its
parent did (checked by `widen`), and fine-tuning lets the new units join in: the zero weights that
read them get gradients as soon as the new units are non-zero, which their random weights make them.
"""

from __future__ import annotations

from typing import Any

import torch

from platepilot.errors import PlatepilotError
from platepilot.training.model import CRNN, build_model

LSTM_GATES = 4  # PyTorch stacks an LSTM's input, forget, cell and output gates in that order


def widen(
    parent: CRNN, in_channels: int, num_classes: int, height: int, old: dict[str, Any], new: dict[str, Any]
) -> CRNN:
    """A CRNN of architecture `new` that computes what `parent` (architecture `old`) computes."""
    old_channels, new_channels = list(old["channels"]), list(new["channels"])
    old_hidden, new_hidden = int(old["hidden"]), int(new["hidden"])
    if len(new_channels) != len(old_channels) or any(n < o for n, o in zip(new_channels, old_channels, strict=True)):
        raise PlatepilotError(f"cannot widen conv widths {old_channels} to {new_channels}: none may shrink")
    if new_hidden < old_hidden:
        raise PlatepilotError(f"cannot widen the LSTM from {old_hidden} to {new_hidden} units")
    child = build_model(in_channels, num_classes, height, new)
    source, target = parent.state_dict(), child.state_dict()
    for name, tensor in target.items():
        if name.endswith("num_batches_tracked"):
            target[name] = source[name].clone()
        elif name.startswith("rnn."):
            _copy_lstm(tensor, source[name], old_hidden, new_hidden)
        elif name.startswith("head."):
            _copy_head(tensor, source[name], old_hidden, new_hidden)
        else:
            _copy_corner(tensor, source[name])
    child.load_state_dict(target)
    _check_same_reads(parent, child, in_channels, height)
    return child


def _copy_corner(tensor: torch.Tensor, old: torch.Tensor) -> None:
    """Old values in the leading corner; a kernel's old outputs read none of the new inputs."""
    tensor[tuple(slice(0, n) for n in old.shape)] = old
    if tensor.dim() == 4:  # a convolution kernel (out, in, kh, kw)
        tensor[: old.shape[0], old.shape[1] :] = 0


def _copy_lstm(tensor: torch.Tensor, old: torch.Tensor, old_hidden: int, new_hidden: int) -> None:
    """Per gate, the old units' rows; their weights on new inputs or new hidden units are zero."""
    for gate in range(LSTM_GATES):
        rows = slice(gate * new_hidden, gate * new_hidden + old_hidden)
        old_rows = slice(gate * old_hidden, (gate + 1) * old_hidden)
        if tensor.dim() == 1:
            tensor[rows] = old[old_rows]
        else:
            tensor[rows, : old.shape[1]] = old[old_rows]
            tensor[rows, old.shape[1] :] = 0


def _copy_head(tensor: torch.Tensor, old: torch.Tensor, old_hidden: int, new_hidden: int) -> None:
    """The head sees [forward units, backward units]: the old ones of each half, zero on the new ones."""
    if tensor.dim() == 1:
        tensor.copy_(old)
        return
    tensor.zero_()
    tensor[:, :old_hidden] = old[:, :old_hidden]
    tensor[:, new_hidden : new_hidden + old_hidden] = old[:, old_hidden:]


def _check_same_reads(parent: CRNN, child: CRNN, in_channels: int, height: int) -> None:
    parent.eval()
    child.eval()
    probe = torch.rand(4, in_channels, height, height * 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        gap = float((parent(probe) - child(probe)).abs().max())
    if gap > 1e-3:
        raise PlatepilotError(f"widening changed the network's output by {gap:.1e}: a layer was not copied")
