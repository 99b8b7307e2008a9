"""The scan of a training tree's files and the train / validation / unseen split (genre.data.training_files)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from genre.data.cmrx import find_training_cases
from genre.data.matio import MatArray, write_mat73
from genre.data.training_files import scan_files, split_cases


def test_split_holds_out_patients_and_domains(training_tree):
    cases = find_training_cases(training_tree)
    train, val, unseen = split_cases(cases, val_patients=1)
    assert {c.location.patient for c in train} == {"P001"} and {c.location.patient for c in val} == {"P002"}
    assert not unseen and len(train) + len(val) == len(cases)
    held = cases[0].location.domain
    train, val, unseen = split_cases(cases, val_patients=1, holdout_domains=[held])
    assert {c.location.domain for c in unseen} == {held}
    assert held not in {c.location.domain for c in train + val}
    # A domain with no more patients than val_patients keeps them all for training.
    train, val, _ = split_cases(cases, val_patients=2)
    assert not val and len(train) == len(cases)
    with pytest.raises(ValueError, match="Center999/X"):
        split_cases(cases, holdout_domains=["Center999/X"])


def test_unreadable_files_are_skipped_with_a_warning(training_tree, tmp_path, caplog):
    cases = find_training_cases(training_tree)
    bad = tmp_path / "MultiCoil" / "Cine" / "TrainingSet" / "FullSample" / "Center001" / "V" / "P001" / "cine_sax.mat"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a MATLAB file")
    with caplog.at_level(logging.WARNING):
        scanned = scan_files(find_training_cases(tmp_path) + cases[:1])
    assert len(scanned) == 1
    assert any(str(bad) in r.getMessage() for r in caplog.records)


def test_compressed_kspace_files_are_reported_once_with_the_remedy(training_tree, tmp_path, caplog):
    cases = find_training_cases(training_tree)[:3]
    with MatArray(cases[0].kspace_path) as source:
        name, values = source.name, source.complex64()
    compressed = tmp_path / "cine_sax.mat"
    write_mat73(compressed, {name: values}, chunks=True, compression="gzip")
    moved = [replace(cases[0], kspace_path=compressed), *cases[1:]]
    with caplog.at_level(logging.WARNING):
        scanned = scan_files(moved)
    assert len(scanned) == 3
    (warning,) = [r.getMessage() for r in caplog.records if "compressed" in r.getMessage()]
    assert warning.startswith("1 of 3 k-space files are compressed") and "genre repack" in warning

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        scan_files(cases)
    assert not [r for r in caplog.records if "compressed" in r.getMessage()]
