from pathlib import Path

import pytest

from genre.data.cmrx import (
    find_cases,
    find_training_cases,
    fullsample_path,
    kspace_layout,
    mask_layout,
    parse_location,
    scan_cases,
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


def test_scan_cases_returns_folders_named_like_inputs_apart_from_the_cases(tmp_path):
    d = tmp_path / "TaskS1" / "odd"
    (d / "T1w_kus_Uniform8.mat").mkdir(parents=True)  # a folder: no case, reported apart
    (d / "T2w_kus_ktRadial24.mat").touch()
    cases, folders = scan_cases(tmp_path)
    assert [c.stem for c in cases] == ["T2w"] and folders == [d / "T1w_kus_Uniform8.mat"]
    assert [c.kus_path for c in find_cases(tmp_path)] == [c.kus_path for c in cases]


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
        kspace_layout("cine_sax", (6,))


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


def _touch_case(root, folders, stem="cine_sax", mask_folder=None):
    """An empty kus file below ``root/folders`` and, with ``mask_folder``, its mask file; returns the kus path."""
    kus = root.joinpath(*folders) / f"{stem}_kus_ktGaussian8.mat"
    kus.parent.mkdir(parents=True, exist_ok=True)
    kus.touch()
    if mask_folder is not None:
        mask = root.joinpath(*mask_folder) / f"{stem}_mask_ktGaussian8.mat"
        mask.parent.mkdir(parents=True, exist_ok=True)
        mask.touch()
    return kus


DOMAIN = ("Center002", "UIH_30T_umr780", "P004")


def test_the_test_scorers_spelling_finds_mask_and_ground_truth(tmp_path):
    # The test scorer reads <T>/MultiCoil/<Mod>/TestSet/<T>/... (the bare task name as the undersampled folder).
    base = ("TaskR2", "MultiCoil", "Cine", "TestSet")
    _touch_case(tmp_path, (*base, "TaskR2", *DOMAIN), mask_folder=(*base, "Mask_TaskR2", *DOMAIN))
    (case,) = find_cases(tmp_path)
    assert case.mask_path == tmp_path.joinpath(*base, "Mask_TaskR2", *DOMAIN, "cine_sax_mask_ktGaussian8.mat")
    assert fullsample_path(case, tmp_path) == tmp_path.joinpath(*base, "FullSample_TaskR2", *DOMAIN, "cine_sax.mat")
    assert case.output_relative == case.relative
    assert (case.location.task, case.location.centre, case.location.patient) == ("TaskR2", "Center002", "P004")


@pytest.mark.parametrize("above,undersample", [
    ((), "UnderSample_TaskS1"),  # the input root is the task folder itself
    (("input",), "UnderSample_TaskS1"),
    (("ChallengeData", "TaskS1"), "UnderSample_TaskS1"),  # a folder wrapping the task folder
    ((), "TaskS1"),  # the test scorer's spelling without the task folder on top
])
def test_outputs_go_below_the_task_folder_whatever_lies_above_multicoil(tmp_path, above, undersample):
    below = ("MultiCoil", "Mapping", "TestSet")
    kus = _touch_case(tmp_path, (*above, *below, undersample, *DOMAIN), "T1map",
                      mask_folder=(*above, *below, "Mask_TaskS1", *DOMAIN))
    (case,) = find_cases(tmp_path)
    assert case.location.task == "TaskS1" and case.location.modality == "Mapping"
    assert case.output_relative == Path("TaskS1", *below, undersample, *DOMAIN, kus.name)
    assert case.output_path("/out") == Path("/out", "TaskS1", *below, undersample, *DOMAIN, kus.name)
    assert case.mask_path is not None and "Mask_TaskS1" in case.mask_path.parts


def test_a_tree_without_task_or_coil_folder_is_mirrored(tmp_path):
    kus = _touch_case(tmp_path, ("odd", "P001"))
    (case,) = find_cases(tmp_path)
    assert case.output_relative == case.relative == kus.relative_to(tmp_path)
    assert case.location.task == "unknown" and case.mask_candidates == (kus.parent / "cine_sax_mask_ktGaussian8.mat",)


def test_two_inputs_with_one_output_path_are_refused_naming_both(tmp_path):
    below = ("MultiCoil", "Cine", "ValidationSet", "UnderSample_TaskR1", *DOMAIN)
    first = _touch_case(tmp_path, ("TaskR1", *below))
    second = _touch_case(tmp_path, ("copy", "TaskR1", *below))
    with pytest.raises(ValueError) as err:
        find_cases(tmp_path)
    assert str(second) in str(err.value) and str(first) in str(err.value) and "\n" not in str(err.value)


def test_single_coil_trees_are_told_by_their_folder(tmp_path):
    _touch_case(tmp_path, ("TaskR1", "SingleCoil", "Cine", "ValidationSet", "UnderSample_TaskR1", *DOMAIN))
    _touch_case(tmp_path, ("TaskR1", "MultiCoil", "Cine", "ValidationSet", "UnderSample_TaskR1", *DOMAIN))
    multi, single = find_cases(tmp_path)
    assert single.single_coil and not multi.single_coil
    assert single.location.modality == "Cine" and single.output_relative.parts[:2] == ("TaskR1", "SingleCoil")


@pytest.mark.parametrize("stem,shape,expected", [
    ("cine_sax", (12, 14, 162, 448), (12, 14, 1, 162, 448)),
    ("cine_lax_4ch", (12, 1, 204, 448), (12, 1, 1, 204, 448)),
    ("lge_sax", (10, 208, 256), (1, 10, 1, 208, 256)),  # nt = 1 dropped by MATLAB
    ("cine_sax", (162, 448), (1, 1, 1, 162, 448)),
    ("T1w", (11, 201, 514), (1, 11, 1, 201, 514)),
    ("blackblood", (205, 256), (1, 1, 1, 205, 256)),
])
def test_single_coil_kspace_layout(stem, shape, expected):
    assert kspace_layout(stem, shape, single_coil=True) == expected


def test_two_dimensional_kspace_is_one_single_coil_image_in_any_tree():
    assert kspace_layout("cine_sax", (162, 448)) == (1, 1, 1, 162, 448)
    assert kspace_layout("T1w", (201, 514)) == (1, 1, 1, 201, 514)
    with pytest.raises(ValueError, match="single-coil .* 2 to 4 dimensions"):
        kspace_layout("cine_sax", (2, 3, 4, 5, 6), single_coil=True)
    with pytest.raises(ValueError, match="single-coil .* 2 to 3 dimensions"):
        kspace_layout("T1w", (3, 4, 5, 6), single_coil=True)


@pytest.mark.parametrize("shape,single_coil,index", [
    ((12, 14, 10, 162, 448), False, (slice(None), 3)),
    ((14, 10, 162, 448), False, (3,)),  # nt = 1 dropped
    ((10, 162, 448), False, ()),
    ((12, 14, 162, 448), True, (slice(None), 3)),
    ((14, 162, 448), True, (3,)),
    ((162, 448), False, ()),
])
def test_stored_index_drops_the_axes_matlab_dropped(shape, single_coil, index):
    from genre.data.cmrx import stored_index

    assert stored_index(shape, single_coil, slice_=3) == index


def test_mask_from_kspace_reads_the_central_slice(tmp_path):
    import numpy as np

    from genre.data.cmrx import mask_from_kspace
    from genre.data.matio import MatArray, write_mat73

    rng = np.random.default_rng(0)
    k = (rng.standard_normal((3, 5, 2, 8, 6)) + 1j * rng.standard_normal((3, 5, 2, 8, 6))).astype(np.complex64)
    mask = np.zeros((3, 8, 6), bool)
    for frame in range(3):
        mask[frame, frame::3] = True
    kus = k * mask[:, None, None]
    kus[:, 2, :, 0, 1] = 0  # an acquired sample that is exactly zero in every coil of the central slice
    kus[:, 0] = 0  # another slice tells nothing: only the central one is read
    write_mat73(tmp_path / "kus.mat", {"kus": kus})
    with MatArray(tmp_path / "kus.mat", ["kus"]) as data:
        derived, whole_lines = mask_from_kspace(data, (3, 5, 2, 8, 6))
    assert whole_lines and derived.dtype == np.float32
    np.testing.assert_array_equal(derived, mask)


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
