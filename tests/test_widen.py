"""Growing a trained CRNN: the wider network reads exactly as its parent, then its new units learn."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.errors import PlatepilotError
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.spec import load_card
from platepilot.plates.synth import synth_sample
from platepilot.training.model import build_model
from platepilot.training.train import TrainOptions, train
from platepilot.training.widen import widen

TINY = {"channels": [8, 8, 16, 16, 24], "hidden": 24}
WIDER = {"channels": [8, 12, 16, 24, 32], "hidden": 32}


def _trained_parent() -> torch.nn.Module:
    """A TINY CRNN whose BatchNorm statistics and weights are not the fresh defaults."""
    torch.manual_seed(1)
    model = build_model(1, 37, 32, TINY)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, 1, 32, 128))
    return model


def test_a_widened_network_reads_as_its_parent() -> None:
    parent = _trained_parent()
    child = widen(parent, 1, 37, 32, TINY, WIDER)
    assert child.collapse.out_channels == 32 and child.rnn.hidden_size == 32
    parent.eval()
    crops = torch.rand(5, 1, 32, 200)  # another width than the check inside widen uses
    with torch.no_grad():
        assert torch.allclose(parent(crops), child(crops), atol=1e-5)
    assert sum(p.numel() for p in child.parameters()) > sum(p.numel() for p in parent.parameters())


def test_the_new_units_learn() -> None:
    child = widen(_trained_parent(), 1, 37, 32, TINY, WIDER)
    child.train()
    optimizer = torch.optim.SGD(child.parameters(), lr=0.1)
    logits = child(torch.rand(4, 1, 32, 128)).log_softmax(2)
    targets = torch.randint(1, 37, (4, 5))
    loss = torch.nn.functional.ctc_loss(logits, targets, torch.full((4,), logits.shape[0]), torch.full((4,), 5))
    loss.backward()
    optimizer.step()
    head = child.head.weight.detach()
    assert head[:, 24:32].abs().sum() > 0  # the head now reads the new forward units
    assert head[:, 56:64].abs().sum() > 0  # and the new backward ones


def test_narrowing_is_refused() -> None:
    with pytest.raises(PlatepilotError, match="none may shrink"):
        widen(_trained_parent(), 1, 37, 32, TINY, {"channels": [8, 8, 8, 16, 24], "hidden": 24})
    with pytest.raises(PlatepilotError, match="LSTM"):
        widen(_trained_parent(), 1, 37, 32, TINY, {"channels": TINY["channels"], "hidden": 16})


def _quiet() -> Console:
    return Console(file=open("/dev/null", "w"), width=200)


def test_train_grows_the_start_model(tmp_path: Path) -> None:
    """`train --init-from A --conv-widths ... --rnn-hidden ...` trains and exports the grown network."""
    torch.set_num_threads(1)
    first = train(TrainOptions(labels=None, output_dir=tmp_path / "a", epochs=1, batch_size=16, synthetic=64,
                               arch=TINY, workers=0), _quiet())  # fmt: skip
    assert first.model_path is not None
    grown = train(TrainOptions(labels=None, output_dir=tmp_path / "b", epochs=1, batch_size=16, synthetic=64,
                               init_from=first.model_path, grow=WIDER, workers=0), _quiet())  # fmt: skip
    assert grown.model_path is not None
    card = load_card(grown.model_path)
    assert card.architecture == WIDER
    assert card.training["export_parity_max_abs"] < 1e-3
    assert any("widened to" in s for s in card.training["sources"])
    reads = CRNNOCRService(grown.model_path).read([synth_sample(4, i).image for i in range(4)])
    assert len(reads) == 4


def test_bad_widths_are_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--synthetic", "16", "--conv-widths", "16,32", "-o", str(tmp_path)])
    assert isinstance(result.exception, PlatepilotError)  # `main` prints it as one line, exit 1
    assert "--conv-widths '16,32': give five positive integers" in str(result.exception)
