"""The container entry point, the root predict.py (a shim over ``genre predict`` with the harness's defaults)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _shim():
    spec = importlib.util.spec_from_file_location("predict_entry_point", ROOT / "predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_missing_input_is_the_only_message_not_a_device_warning(tmp_path, caplog, monkeypatch):
    # The default method is genre and --device auto: on a machine without CUDA that used to warn
    # about the CPU first, burying the one line the operator needs.
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with caplog.at_level(logging.INFO):
        status = _shim().main(["--input", str(tmp_path / "missing"), "--output", str(tmp_path / "out")])
    assert status == 2
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert messages == [f"{tmp_path / 'missing'}: input folder not found"]


def test_environment_picks_method_and_output_mode(tmp_path, mini_tree, monkeypatch):
    monkeypatch.setenv("GENRE_METHOD", "zero-filled")
    monkeypatch.setenv("GENRE_OUTPUT_MODE", "ranking")
    out = tmp_path / "out"
    assert _shim().main(["--input", str(mini_tree), "--output", str(out)]) == 0
    from genre.submission import validate_submission
    from genre.data.contract import OutputMode

    assert validate_submission(out, mini_tree, OutputMode.RANKING).ok
