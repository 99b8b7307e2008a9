"""A moving cardiac phantom and smooth coils: pure numpy images for :mod:`genre.data.synthetic`.

What is simulated, per patient (anatomy drawn once) and file stem (contrast, motion, slices):

* Anatomy on an isotropic pixel grid, in units of the body's half-height ``ry = 0.42 ny``: body
  ellipse (muscle) with a subcutaneous fat rim, two dark lungs, a liver that grows towards the
  apex, a descending aorta, and the heart: LV blood pool, LV myocardium (with an optional
  transmural scar sector), RV blood and wall; long-axis views show an elongated LV with its
  atrium, four-chamber views the right heart too. Edges are smooth (a logistic of about half a
  pixel) so that sharp pixel steps do not dominate the error. Slices of a stack move from apex
  to base (the heart grows, the liver recedes).
* Motion: cine and flow series span one periodic cardiac cycle (frame 0 follows the last), the
  LV cavity shrinking by 30% in systole with constant myocardial area (the wall thickens);
  perfusion frames are triggered at one phase with a slow breathing drift; mapping, LGE and
  static weightings are at diastole.
* Contrast from per-tissue PD, T1 and T2 at the domain's field strength (linear in B0 between
  the 1.5 T and 3 T values, extrapolated beyond): cine is bSSFP (bright blood); mapping series
  are inversion recovery (T1map, T1mappost, signed) or exponential decay (T2map, T2smap,
  T1rho) over their weightings; LGE nulls the post-contrast myocardium so scar is bright;
  blackblood / T1w / T2w are spin echoes with suppressed blood; perfusion follows a gamma-variate
  first pass (RV, then LV, then myocardium, the scar hypo-enhanced); flow2d adds a pulsatile
  velocity phase to the aorta. Every contrast is scaled so that its brightest tissue is 1. A
  smooth low-order polynomial phase and a mild multiplicative texture are added.
* Coils: ``nc`` loops around the body, Biot-Savart-like magnitude ``(R^2 / (R^2 + d^2 + h^2))^1.5``
  with a smooth phase, scaled so that their root-sum-of-squares peaks at 1.

No file I/O. Random numbers come from :func:`keyed_rng`, generators keyed on the seed and names
(patient, slice), so an image does not depend on what else is generated.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import expit

# --------------------------------------------------------------------------------------------
# Tissues and contrast


@dataclass(frozen=True)
class Tissue:
    pd: float  # proton density, relative
    t1: tuple[float, float]  # ms at 1.5 T and 3 T
    t2: tuple[float, float]  # ms at 1.5 T and 3 T
    t1_post: float  # ms after gadolinium (LGE, T1mappost)

    def at(self, values: tuple[float, float], field_t: float) -> float:
        low, high = values
        # Linear in B0 through the 1.5 T and 3 T values; floored so that extrapolation stays physical.
        return max(low + (high - low) * (field_t - 1.5) / 1.5, 0.2 * min(low, high))


#: Literature-typical relaxation values (ms).
TISSUES: dict[str, Tissue] = {
    "blood": Tissue(0.95, (1550, 1930), (250, 180), 300),
    "myocardium": Tissue(0.80, (950, 1200), (50, 45), 450),
    "scar": Tissue(0.80, (1100, 1400), (60, 55), 250),
    "fat": Tissue(1.00, (260, 380), (80, 70), 250),
    "muscle": Tissue(0.75, (1000, 1400), (35, 30), 600),
    "liver": Tissue(0.75, (580, 810), (45, 35), 350),
    "lung": Tissue(0.12, (1200, 1300), (40, 30), 900),
}
#: Anatomical regions and the tissue each is made of.
REGION_TISSUE = {
    "lv": "blood",
    "rv": "blood",
    "atria": "blood",
    "aorta": "blood",
    "myocardium": "myocardium",
    "scar": "scar",
    "fat": "fat",
    "muscle": "muscle",
    "liver": "liver",
    "lung": "lung",
}
#: Perfusion first pass per region: (arrival, time to peak, peak concentration mM), times as
#: fractions of the series; the scar is hypo-perfused.
_FIRST_PASS = {
    "rv": (0.05, 0.12, 6.0),
    "lv": (0.15, 0.14, 5.0),
    "atria": (0.15, 0.14, 5.0),
    "aorta": (0.17, 0.14, 5.0),
    "myocardium": (0.22, 0.25, 0.6),
    "scar": (0.30, 0.30, 0.15),
    "liver": (0.25, 0.40, 0.5),
    "muscle": (0.25, 0.50, 0.3),
    "fat": (0.25, 0.50, 0.05),
    "lung": (0.10, 0.20, 0.4),
}
_R1 = 4.5e-3  # gadolinium relaxivity, 1/(mM ms)
_BLOOD_SUPPRESSION = 0.05  # what is left of flowing blood in dark-blood spin echoes


def _contrast_kind(stem: str) -> str:
    if stem.startswith(("cine", "flow2d")):
        return "cine"
    if stem.startswith("lge"):
        return "lge"
    return stem


def _gamma_variate(tau: np.ndarray, arrival: float, peak: float) -> np.ndarray:
    """Unit-peak gamma variate (shape 3) with a 20% recirculation plateau afterwards."""
    s = np.clip((tau - arrival) / peak, 0, None)
    return s**3 * np.exp(3 * (1 - s)) + 0.2 * np.clip(s - 1, 0, 1)


def region_signals(stem: str, frames: int, field_t: float) -> dict[str, np.ndarray]:
    """Real (signed) signal of every region per frame, ``(frames,)`` each, brightest tissue scaled to 1."""
    kind = _contrast_kind(stem)
    out: dict[str, np.ndarray] = {}
    for region, tissue_name in REGION_TISSUE.items():
        tissue = TISSUES[tissue_name]
        pd, t1, t2 = tissue.pd, tissue.at(tissue.t1, field_t), tissue.at(tissue.t2, field_t)
        blood = tissue_name == "blood"
        if kind == "cine":
            flip = math.radians(50 if field_t < 2 else 40)  # SAR limits the bSSFP flip at higher field
            ratio = t1 / t2
            s = np.full(frames, pd * math.sin(flip) / ((ratio + 1) - math.cos(flip) * (ratio - 1)))
        elif kind in ("T1map", "T1mappost"):
            t1 = tissue.t1_post if kind == "T1mappost" else t1
            ti = np.geomspace(100, 1500 if kind == "T1mappost" else 3500, frames)
            s = pd * (1 - 2 * np.exp(-ti / t1))
        elif kind == "T2map":
            s = pd * np.exp(-np.linspace(0, 60, frames) / t2)
        elif kind == "T2smap":
            s = pd * np.exp(-np.linspace(2, 25, frames) / (0.6 * t2))
        elif kind == "T1rho":
            s = pd * np.exp(-np.linspace(0, 50, frames) / (1.1 * t2))
        elif kind == "lge":
            ti = math.log(2) * TISSUES["myocardium"].t1_post  # nulls healthy myocardium
            s = np.full(frames, pd * (1 - 2 * math.exp(-ti / tissue.t1_post)))
        elif kind == "perfusion":
            arrival, peak, conc = _FIRST_PASS[region]
            c = conc * _gamma_variate(np.linspace(0, 1, frames), arrival, peak)
            s = pd * (1 - np.exp(-100.0 * (1 / t1 + _R1 * c)))  # saturation recovery, 100 ms delay
        elif kind in ("blackblood", "T2w", "T1w"):
            tr, te = (700.0, 10.0) if kind == "T1w" else (2000.0, 70.0)
            s = np.full(frames, pd * (1 - math.exp(-tr / t1)) * math.exp(-te / t2))
            s *= _BLOOD_SUPPRESSION if blood else 1.0
        else:
            raise ValueError(f"no contrast model for stem {stem!r}")
        out[region] = np.asarray(s, dtype=np.float64)
    peak_signal = max(float(np.abs(s).max()) for s in out.values())
    return {region: s / peak_signal for region, s in out.items()}


# --------------------------------------------------------------------------------------------
# Anatomy


def keyed_rng(seed: int, *labels: str) -> np.random.Generator:
    """A generator keyed on the seed and names, independent of what else the tree holds."""
    return np.random.default_rng([seed, *(zlib.crc32(label.encode()) for label in labels)])


@dataclass(frozen=True)
class Anatomy:
    """One patient's geometry, in units of the body half-height (see the module docstring)."""

    body_aspect: float  # half-width over half-height of the body ellipse
    heart: tuple[float, float]  # LV centre (x, y)
    lv_radius: float  # diastolic LV cavity radius at the base
    wall: float  # diastolic LV wall thickness
    tilt: float  # rotation of the right heart and long-axis views, radians
    scar: tuple[float, float]  # (centre angle, width) of the scar sector, radians; width 0: none
    phase: tuple[float, ...]  # smooth phase, radians: coefficients of 1, x, y, xy, x^2, y^2
    texture_seed: int

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Anatomy:
        return cls(
            body_aspect=float(rng.uniform(1.25, 1.5)),
            heart=(float(rng.uniform(0.05, 0.2)), float(rng.uniform(-0.05, 0.1))),
            lv_radius=float(rng.uniform(0.2, 0.26)),
            wall=float(rng.uniform(0.08, 0.11)),
            tilt=float(rng.uniform(-0.3, 0.3)),
            scar=(float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.6, 1.4)) if rng.random() < 0.7 else 0.0),
            phase=tuple(float(v) for v in rng.normal(0, [1.0, 0.6, 0.6, 0.3, 0.3, 0.3])),
            texture_seed=int(rng.integers(2**31)),
        )


def _ellipse(x, y, centre, axes, angle, edge):
    """Smooth membership of an ellipse: ~1 inside, ~0 outside, a logistic ``edge`` wide across the rim."""
    (cx, cy), (a, b) = centre, axes
    c, s = math.cos(angle), math.sin(angle)
    u = (x - cx) * c + (y - cy) * s
    v = -(x - cx) * s + (y - cy) * c
    q = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return expit((1 - q) * min(a, b) / edge)


def _sector(x, y, centre, middle, width, radius, edge):
    """Smooth angular sector around ``centre`` (radians), its sides blurred like ``_ellipse`` rims at ``radius``."""
    angle = np.arctan2(y - centre[1], x - centre[0])
    off = np.abs(np.angle(np.exp(1j * (angle - middle))))
    return expit((width / 2 - off) * radius / edge)


def _grid(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Pixel coordinates ``(x, y)`` in body half-heights about the FFT centre, and the half-height in pixels."""
    ry = 0.42 * ny
    y, x = np.meshgrid((np.arange(ny) - ny // 2) / ry, (np.arange(nx) - nx // 2) / ry, indexing="ij")
    return x, y, ry


def _regions(anat: Anatomy, view: str, z: float, contraction: float, x, y, ry: float, nx: int):
    """Front-to-back ``(region, membership)`` list of one image; ``z`` runs apex (-1) to base (+1)."""
    edge = 0.6 / ry
    c = contraction
    hx, hy = anat.heart[0], anat.heart[1] + 0.02 * c
    body_w = min(anat.body_aspect, 0.45 * nx / ry)  # the readout FOV caps the body width
    out = []
    if view == "sax":
        grow = 0.75 + 0.125 * (z + 1)
        rb0 = anat.lv_radius * grow
        rb = rb0 * (1 - 0.3 * c)
        ro = math.sqrt(rb**2 + (rb0 + anat.wall) ** 2 - rb0**2)  # myocardial area is conserved
        out.append(("lv", _ellipse(x, y, (hx, hy), (rb, rb), 0.0, edge)))
        outer = _ellipse(x, y, (hx, hy), (ro, ro), 0.0, edge)
        if anat.scar[1] > 0:
            out.append(("scar", outer * _sector(x, y, (hx, hy), anat.scar[0], anat.scar[1], ro, edge)))
        out.append(("myocardium", outer))
        rv_axes = (0.75 * ro * (1 - 0.15 * c), 1.2 * ro * (1 - 0.1 * c))
        rv_centre = (hx - ro - 0.35 * rv_axes[0], hy - 0.05)
        out.append(("rv", _ellipse(x, y, rv_centre, rv_axes, anat.tilt, edge)))
        wall = 0.35 * anat.wall
        out.append(("myocardium", _ellipse(x, y, rv_centre, (rv_axes[0] + wall, rv_axes[1] + wall), anat.tilt, edge)))
        out.append(("aorta", _ellipse(x, y, (hx + 0.15, 0.55), (0.08, 0.08), 0.0, edge)))
        liver = float(np.clip(0.5 - 0.5 * z, 0.0, 1.0))
        if liver > 0.05:
            out.append(("liver", _ellipse(x, y, (-0.45, 0.6), (0.7 * liver, 0.4 * liver), -0.2, edge)))
    else:
        # Long axis: elongated LV at the view's angle, atrium beyond the base; 4ch adds the right heart.
        angle = {"2ch": 0.9, "3ch": 0.6, "4ch": 0.35}.get(view, 0.7) + anat.tilt + 0.5 * z
        short, long = anat.lv_radius * (1 - 0.3 * c), 2.2 * anat.lv_radius * (1 - 0.12 * c)
        axis = (math.cos(angle), math.sin(angle))
        out.append(("lv", _ellipse(x, y, (hx, hy), (long, short), angle, edge)))
        out.append(("myocardium", _ellipse(x, y, (hx, hy), (long + anat.wall, short + anat.wall), angle, edge)))
        base = long + anat.wall + 0.7 * anat.lv_radius * (1 + 0.2 * c)
        atrium = (hx - base * axis[0], hy - base * axis[1])
        atrium_axes = (0.8 * anat.lv_radius * (1 + 0.2 * c), anat.lv_radius)  # the atria fill in systole
        out.append(("atria", _ellipse(x, y, atrium, atrium_axes, angle, edge)))
        if view == "4ch":
            side = 2 * (short + anat.wall)
            normal = (-axis[1] * side, axis[0] * side)
            rv_centre = (hx + normal[0], hy + normal[1])
            rv_axes = (0.85 * long, 0.8 * short)
            out.append(("rv", _ellipse(x, y, rv_centre, rv_axes, angle, edge)))
            rv_wall = 0.4 * anat.wall
            out.append(("myocardium", _ellipse(x, y, rv_centre, (rv_axes[0] + rv_wall, rv_axes[1] + rv_wall), angle, edge)))
            right_atrium = (atrium[0] + normal[0], atrium[1] + normal[1])
            out.append(("atria", _ellipse(x, y, right_atrium, atrium_axes, angle, edge)))
        out.append(("liver", _ellipse(x, y, (-0.5, 0.7), (0.55, 0.3), -0.2, edge)))
    out.append(("lung", _ellipse(x, y, (-0.6 * body_w, -0.1), (0.32 * body_w, 0.6), 0.1, edge)))
    out.append(("lung", _ellipse(x, y, (0.6 * body_w, -0.15), (0.28 * body_w, 0.55), -0.1, edge)))
    body = _ellipse(x, y, (0.0, 0.0), (body_w, 1.0), 0.0, edge)
    out.append(("fat", body * (1 - _ellipse(x, y, (0.0, 0.0), (0.9 * body_w, 0.9), 0.0, edge))))
    out.append(("muscle", body))
    return out


def _view(stem: str) -> str:
    """Imaging plane of a stem: ``sax``, ``2ch``/``3ch``/``4ch``, or ``lax`` for the other long-axis views."""
    tokens = set(stem.split("_"))
    for view in ("2ch", "3ch", "4ch"):
        if view in tokens:
            return view
    return "lax" if tokens & {"lax", "lvot", "rvot", "ot"} else "sax"


def phantom_images(
    stem: str, frames: int, slices: int, ny: int, nx: int, field_t: float = 3.0, seed: int = 0, patient: str = "P001"
) -> np.ndarray:
    """The noiseless complex image series ``(frames, slices, ny, nx)`` complex64 of one stem, brightest tissue ~1.

    The anatomy depends on ``seed`` and ``patient`` only, so every stem of a patient shows the
    same heart. ``frames`` are cardiac phases (cine, flow, perfusion) or weightings (mapping).
    """
    anat = Anatomy.draw(keyed_rng(seed, "anatomy", patient))
    kind = _contrast_kind(stem)
    signals = region_signals(stem, frames, field_t)
    x, y, ry = _grid(ny, nx)
    view = _view(stem)
    phase_t = np.arange(frames) / frames
    contraction = 0.5 * (1 - np.cos(2 * np.pi * phase_t)) if kind == "cine" else np.zeros(frames)
    # Perfusion is triggered at one cardiac phase but drifts with breathing.
    drift = 0.06 * np.sin(2 * np.pi * np.arange(frames) / 10) if kind == "perfusion" else np.zeros(frames)
    # Aortic outflow during the first 40% of the cycle (systole), none in diastole.
    systole = np.where(phase_t < 0.4, np.sin(np.pi * phase_t / 0.4), 0.0)
    velocity = systole if stem == "flow2d" else np.zeros(frames)
    poly = np.stack([np.ones_like(x), x, y, x * y, x**2, y**2])
    out = np.zeros((frames, slices, ny, nx), np.complex64)
    for k in range(slices):
        z = 0.0 if slices == 1 else -0.8 + 1.6 * k / (slices - 1)
        blobs = gaussian_filter(keyed_rng(anat.texture_seed, "texture", str(k)).standard_normal((ny, nx)), 0.04 * ry)
        texture = 1 + 0.06 * blobs / max(blobs.std(), 1e-12)
        phase = np.tensordot(np.asarray(anat.phase) + np.array([0.3 * z, 0.2 * z, 0, 0, 0, 0]), poly, axes=1)
        for t in range(frames):
            image = np.zeros((ny, nx), np.complex128)
            remaining = np.ones((ny, nx))
            for region, membership in _regions(anat, view, z, contraction[t], x, y - drift[t], ry, nx):
                weight = membership * remaining
                remaining = remaining - weight
                value = signals[region][t] * weight
                if region == "aorta" and velocity[t] > 0:
                    value = value * np.exp(1j * 0.8 * np.pi * velocity[t])  # through-plane velocity encoding
                image += value
            out[t, k] = image * texture * np.exp(1j * phase)
    return out


def coil_maps(coils: int, ny: int, nx: int, seed: int = 0, patient: str = "P001") -> np.ndarray:
    """Smooth complex coil sensitivities ``(coils, ny, nx)`` complex64 of loops placed around the body; RSS peaks at 1."""
    rng = keyed_rng(seed, "coils", patient, str(coils))
    x, y, ry = _grid(ny, nx)
    body_w = min(1.4, 0.45 * nx / ry)
    angles = 2 * np.pi * np.arange(coils) / coils + rng.uniform(-0.2, 0.2, coils)
    loop = 1.0
    maps = np.empty((coils, ny, nx), np.complex64)
    for i, angle in enumerate(angles):
        cx, cy = 1.1 * body_w * math.cos(angle), 1.1 * math.sin(angle)
        d2 = (x - cx) ** 2 + (y - cy) ** 2 + rng.uniform(0.05, 0.25)  # plus the squared out-of-plane offset
        magnitude = (loop**2 / (loop**2 + d2)) ** 1.5
        maps[i] = magnitude * np.exp(1j * (rng.uniform(0, 2 * np.pi) + 0.5 * np.sqrt(d2)))
    return maps / np.sqrt((np.abs(maps) ** 2).sum(0)).max()
