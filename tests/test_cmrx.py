from pathlib import Path

import pytest

from genre.data.cmrx import (
    find_cases,
    find_training_cases,
    fullsample_path,
    kspace_layout,
    mask_layout,
    parse_location,
)


def test_find_cases_parses_every_field(mini_tree):
    cases = find_cases(mini_tree)
    assert [c.stem for c in cases] == ["cine_lax_4ch", "cine_sax", "T1w"]
    c = cases[1]
    assert (c.pattern, c.acceleration) == ("Uniform", 4)
    loc = c.location
    assert (loc.task, loc.modality, loc.set_name, loc.centre, loc.vendor, loc.patient) == (
        "TaskR1", "Cine", "ValidationSet", "Center001", "Siemens_30T_CIMA.X", "P001")
    assert loc.domain == "Center001/Siemens_30T_CIMA.X"
    assert c.mask_path is not None and "Mask_TaskR1" in c.mask_path.parts
    assert c.mask_path.name == "cine_sax_mask_Uniform4.mat"
    assert c.output_path(Path("/out")) == Path("/out") / c.relative
    assert c.relative.parts[0] == "TaskR1"
    assert fullsample_path(c, mini_tree).is_file()


def test_mask_beside_the_kus_file_is_found(tmp_path):
    d = tmp_path / "TaskS1" / "odd"
    d.mkdir(parents=True)
    (d / "T2w_kus_ktRadial24.mat").touch()
    (d / "T2w_mask_ktRadial24.mat").touch()
    (case,) = find_cases(tmp_path)
    assert case.mask_path == d / "T2w_mask_ktRadial24.mat"
    assert (case.location.task, case.pattern, case.acceleration) == ("TaskS1", "ktRadial", 24)


def test_location_tolerates_unknown_layouts():
    loc = parse_location(("TaskR2", "MultiCoil", "Cine", "TestSet", "TaskR2", "Center007", "UIH_15T_umr670", "P123"))
    assert (loc.task, loc.set_name, loc.centre, loc.vendor, loc.patient) == ("TaskR2", "TestSet", "Center007", "UIH_15T_umr670", "P123")
    assert parse_location(("foo",)).centre == "unknown"


def test_training_tree(tmp_path):
    from genre.data.matio import write_mat73
    import numpy as np

    base = tmp_path / "MultiCoil" / "Cine" / "TrainingSet"
    rel = Path("Center001", "Siemens_30T_Vida", "P001")
    write_mat73(base / "FullSample" / rel / "cine_sax.mat", {"kspace": np.ones((2, 1, 2, 4, 4), np.complex64)})
    for name in ("cine_sax_mask_Uniform8.mat", "cine_sax_mask_ktRadial16.mat", "cine_sax2_mask_Uniform8.mat"):
        write_mat73(base / "Mask_TaskAll" / rel / name, {"mask": np.ones((4, 4))})
    (case,) = find_training_cases(tmp_path)
    assert case.stem == "cine_sax" and case.location.vendor == "Siemens_30T_Vida"
    assert [(p, r) for p, r, _ in case.masks] == [("Uniform", 8), ("ktRadial", 16)]


@pytest.mark.parametrize("stem,shape,expected", [
    ("cine_sax", (12, 14, 10, 162, 448), (12, 14, 10, 162, 448)),
    ("cine_lax_4ch", (12, 1, 10, 204, 448), (12, 1, 10, 204, 448)),
    ("lge_sax", (10, 10, 208, 256), (1, 10, 10, 208, 256)),  # nt = 1 dropped by MATLAB
    ("T1w", (11, 10, 201, 514), (1, 11, 10, 201, 514)),
    ("blackblood", (10, 205, 256), (1, 1, 10, 205, 256)),  # nz = 1 dropped too
])
def test_kspace_layout(stem, shape, expected):
    assert kspace_layout(stem, shape) == expected


def test_kspace_layout_rejects_impossible_shapes():
    with pytest.raises(ValueError, match="T1w"):
        kspace_layout("T1w", (2, 3, 4, 5, 6))
    with pytest.raises(ValueError):
        kspace_layout("cine_sax", (5, 6))


def test_mask_layout():
    assert mask_layout((162, 448), (12, 2, 10, 162, 448)) == (1, 162, 448)
    assert mask_layout((12, 162, 448), (12, 2, 10, 162, 448)) == (12, 162, 448)
    with pytest.raises(ValueError, match="does not fit"):
        mask_layout((448, 162), (12, 2, 10, 162, 448))
    with pytest.raises(ValueError, match="does not fit"):
        mask_layout((5, 162, 448), (12, 2, 10, 162, 448))


def test_read_mask_checks_shape_and_values(tmp_path):
    from genre.data.cmrx import read_mask
    from genre.data.matio import MatFileError, write_mat73
    import numpy as np

    kspace = (3, 2, 4, 6, 8)
    mask = np.zeros((3, 6, 8))
    mask[:, ::2] = 1
    write_mat73(tmp_path / "good.mat", {"mask": mask})
    assert np.array_equal(read_mask(tmp_path / "good.mat", kspace), mask.astype(np.float32))
    write_mat73(tmp_path / "shared.mat", {"mask": mask[0]})
    assert read_mask(tmp_path / "shared.mat", kspace).shape == (1, 6, 8)
    for name, values, problem in (("half.mat", mask * 0.5, "0 or 1"), ("nan.mat", np.where(mask, np.nan, 0), "0 or 1"),
                                  ("wide.mat", mask[:, :, :4], "does not fit")):
        write_mat73(tmp_path / name, {"mask": values})
        with pytest.raises(MatFileError, match=f"{name}: .*{problem}"):
            read_mask(tmp_path / name, kspace)


def test_a_mask_that_samples_nothing_is_refused_for_every_method(tmp_path):
    # Once refused by CG-SENSE and GENRE-CMR (no calibration block) but reconstructed by zero-filled.
    from genre.data.cmrx import read_mask
    from genre.data.matio import MatFileError, write_mat73
    import numpy as np

    kspace = (3, 2, 4, 6, 8)
    write_mat73(tmp_path / "zero.mat", {"mask": np.zeros((6, 8))})
    with pytest.raises(MatFileError, match=r"zero\.mat: mask is all zero: nothing was acquired"):
        read_mask(tmp_path / "zero.mat", kspace)
    mask = np.ones((3, 6, 8))
    mask[[0, 2]] = 0
    write_mat73(tmp_path / "frames.mat", {"mask": mask})
    with pytest.raises(MatFileError, match=r"frames\.mat: mask samples nothing in frame\(s\) 1, 3 \(1-based\)"):
        read_mask(tmp_path / "frames.mat", kspace)
