"""The organizers' image metrics (CMRxRecon 2025 validation and test scorers), reproduced exactly.

Arrays here are ``img4ranking`` volumes in **MATLAB order** ``(x, y[, z[, t]])``: x is the
readout, and one 2-D image is ``volume[:, :, ...]`` with the trailing indices fixed.

Per 2-D image, ground truth and submission are each normalised on their own by
``|x| / percentile(|x|, 99.5)`` (left unchanged when that percentile is 0, never clipped), then
scored with scikit-image's defaults against a reference ``a``::

    PSNR = peak_signal_noise_ratio(a, b, data_range=a.max())
    SSIM = structural_similarity(a, b, data_range=a.max())
    NMSE = ||a - b||^2 / ||a||^2

Both scorers pass their two arrays swapped into their metric routine ``calmetric``, which
itself uses opposite argument orders for different ranks: for a **4-D** array ``a`` is the
*submission* (its maximum sets the data range, its energy is the NMSE denominator); for 2-D and
3-D arrays ``a`` is the ground truth. The scorers differ in what rank an array has when it gets
there (:class:`Grader`):

* **validation** (``Val_Score2025.py`` with ``evaluation-2025/Evaluation.py`` of
  CmrxRecon/CMRxRecon2025-snippets; the leaderboard during the challenge) compares the arrays
  as ``scipy.io.loadmat`` returns them, without squeezing. Shapes must be equal as they are, so
  a prediction that dropped an interior singleton fails as a shape mismatch; an
  ``(x, y, 1, t)`` file (one slice of a cine view, T2smap, flow2d) is 4-D and takes the
  submission-as-reference branch; and its ``calmetric`` has no 2-D branch: its other branch
  indexes ``[:, :, j]``, which raises ``IndexError`` on a 2-D array and stops the whole run.
* **test** (``Test_Score2025.py`` with ``test-2025/Evaluation.py`` of
  CmrxRecon/CMRx-evaluation-snippets; the final ranking) squeezes both arrays first, so the same
  ``(x, y, 1, t)`` file is 3-D with the ground truth as reference, and a 2-D array is one image.

:func:`score_volume` reproduces a scorer with ``leaderboard=True``; ``leaderboard=False`` always
takes the ground truth as ``a`` over the same images, the honest score reported beside it.
Identical images give PSNR = inf, as scikit-image does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

PERCENTILE = 99.5
SSIM_WINDOW = 7  # scikit-image's default window side


class Grader(str, Enum):
    """Which of the organizers' scorers to reproduce (see the module docstring)."""

    VALIDATION = "validation"  # arrays as loaded, no squeeze
    TEST = "test"  # both arrays squeezed


class ScoreError(ValueError):
    """A volume pair that cannot be scored; ``str()`` is one line saying why."""


class ShapeMismatch(ScoreError):
    """Ground truth and prediction differ in shape as the scorer compares them."""


@dataclass(frozen=True)
class VolumeScore:
    """Means of one file's per-image metrics over its ``images`` 2-D images."""

    psnr: float
    ssim: float
    nmse: float
    images: int


def normalize_percentile(image: np.ndarray) -> np.ndarray:
    """``|image| / percentile(|image|, 99.5)``, or ``|image|`` when that percentile is 0."""
    magnitude = np.abs(image)
    scale = np.percentile(magnitude, PERCENTILE)
    if scale == 0:
        return magnitude
    return magnitude / scale


def image_scores(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """``(PSNR, SSIM, NMSE)`` of two normalised 2-D images, ``a`` the reference."""
    # Degenerate images (all zero) give inf/nan as in the grader; its numbers, not our warnings.
    with np.errstate(divide="ignore", invalid="ignore"):
        data_range = a.max()
        psnr = peak_signal_noise_ratio(a, b, data_range=data_range)
        ssim = structural_similarity(a, b, data_range=data_range)
        nmse = np.linalg.norm(a - b) ** 2 / np.linalg.norm(a) ** 2
    return float(psnr), float(ssim), float(nmse)


#: Why a 2-D file scored under the validation grader is scored as the test scorer scores it.
VALIDATION_2D = (
    "2-D array: the validation scorer's calmetric has no 2-D branch (its other branch indexes [:, :, j], "
    "an IndexError that stops its whole run), so it is scored as the test scorer scores it"
)


def graded_pair(gt: np.ndarray, pred: np.ndarray, grader: Grader = Grader.VALIDATION) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as ``grader`` compares them, checked for equal shape and finite values.

    The test scorer squeezes both; the validation scorer takes them as they are. A 2-D array,
    which stops the validation scorer's whole run (:data:`VALIDATION_2D`), is scored under both as
    the test scorer scores it, one image with the ground truth as reference: the alternative is no
    score for any file. Raises :class:`ShapeMismatch` for different shapes, :class:`ScoreError`
    for a rank no scorer scores, images smaller than the SSIM window, or non-finite values.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if grader is Grader.TEST:
        gt, pred = np.squeeze(gt), np.squeeze(pred)
    if gt.shape != pred.shape:
        compared = "after squeeze" if grader is Grader.TEST else "as stored (the validation scorer does not squeeze)"
        raise ShapeMismatch(f"shape mismatch {compared}: ground truth {gt.shape}, prediction {pred.shape} (MATLAB order)")
    if not 2 <= gt.ndim <= 4:
        raise ScoreError(f"cannot score a {gt.ndim}-D array of shape {gt.shape}: expected 2-D to 4-D (x, y[, z[, t]])")
    if min(gt.shape[:2]) < SSIM_WINDOW:
        raise ScoreError(f"images of {gt.shape[0]}x{gt.shape[1]} are smaller than SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window")
    for name, array in (("prediction", pred), ("ground truth", gt)):
        bad = array.size - int(np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ScoreError(f"{name} holds {bad} non-finite values (NaN or inf)")
    return gt, pred


def leaderboard_swaps(ndim: int) -> bool:
    """Whether the scorers take the submission as the reference ``a`` for an array of ``ndim`` as compared."""
    return ndim == 4


def _normalised_images(gt: np.ndarray, pred: np.ndarray, grader: Grader) -> tuple[int, list[np.ndarray], list[np.ndarray]]:
    """The rank as compared and every normalised 2-D ``(x, y)`` image of both volumes."""
    gt, pred = graded_pair(gt, pred, grader)

    def images(volume: np.ndarray) -> list[np.ndarray]:
        flat = volume.reshape(volume.shape[0], volume.shape[1], -1)
        return [normalize_percentile(flat[:, :, i]) for i in range(flat.shape[2])]

    return gt.ndim, images(gt), images(pred)


def _mean_scores(reference: list[np.ndarray], other: list[np.ndarray]) -> VolumeScore:
    scores = np.array([image_scores(a, b) for a, b in zip(reference, other)], dtype=np.float64)
    # A plain mean, as the grader's np.mean: one NaN image makes the file's mean NaN.
    psnr, ssim, nmse = scores.mean(axis=0)
    return VolumeScore(float(psnr), float(ssim), float(nmse), len(scores))


def score_volume(gt: np.ndarray, pred: np.ndarray, leaderboard: bool = True, grader: Grader = Grader.VALIDATION) -> VolumeScore:
    """Score one file: the mean PSNR, SSIM and NMSE over all its 2-D images.

    ``gt`` and ``pred`` are MATLAB-order arrays ``(x, y[, z[, t]])``, compared as ``grader``
    does (squeezed for the test scorer). ``leaderboard=True`` reproduces the scorer's argument
    order (submission as reference for 4-D arrays); ``False`` gives the GT-referenced score.
    Raises :class:`ScoreError`.
    """
    ndim, gt_images, pred_images = _normalised_images(gt, pred, grader)
    if leaderboard and leaderboard_swaps(ndim):
        return _mean_scores(pred_images, gt_images)
    return _mean_scores(gt_images, pred_images)


def score_pair(gt: np.ndarray, pred: np.ndarray, grader: Grader = Grader.VALIDATION) -> tuple[VolumeScore, VolumeScore]:
    """``(leaderboard, symmetric)`` scores of one file; see :func:`score_volume`.

    The two differ only for arrays that are 4-D as compared, so only those are scored twice.
    """
    ndim, gt_images, pred_images = _normalised_images(gt, pred, grader)
    symmetric = _mean_scores(gt_images, pred_images)
    if not leaderboard_swaps(ndim):
        return symmetric, symmetric
    return _mean_scores(pred_images, gt_images), symmetric
