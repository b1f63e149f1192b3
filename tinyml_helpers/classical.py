"""An ad-hoc people/car pipeline for a low-power smart vision sensor, and what it costs.

The workshop's example of an *ad-hoc* TinyML solution: a smart vision sensor outputs a
low-resolution frame plus a binary motion (background-subtracted) mask; an MCU finds the
blobs in the mask by border following (Suzuki and Abe, "Topological structural analysis
of digitized binary images by border following", CVGIP 30(1), 1985), which also yields the
hierarchy of contours (outer borders and holes); it draws a bounding box around each blob,
computes a few statistics of the blob (area, image moments) and classifies it with an SVM.

What lives here:

* **Scenes** (:func:`generate_frames`): a seeded generator of *synthetic* sensor frames,
  written here because no dataset of this kind ships offline. People are articulated
  silhouettes (head, torso, swinging arms, striding legs); cars are side views (body, cabin,
  wheels) of three shapes. Sizes follow a simple ground-plane perspective; objects are cut by
  the frame edge and occlude each other; the sensor adds optics blur, gray-level noise and
  salt-and-pepper flips to the mask. Ground truth: the visible box and the label of each
  object.
* **Blob stage** (:func:`clean_mask`, :func:`detect_blobs`): OpenCV's ``findContours``
  (which implements Suzuki-Abe) with ``RETR_CCOMP`` for the two-level hierarchy,
  ``boundingRect``, ``moments`` and ``HuMoments``.
* **Features** (:func:`blob_features`): log area, aspect ratio, extent and the seven
  log-scaled Hu moment invariants; classified by scikit-learn's ``SVC``.
* **Evaluation** (:func:`match_detections`, :func:`run_blob_stage`): IoU matching of blobs
  to ground truth (recall / precision), crops and features of the matched blobs.
* **Cost model** (:data:`OPS_MODEL`, :func:`blob_stage_ops`, :func:`svm_ops`,
  :func:`classical_costs`): the operations and working memory of the pipeline, counted pass by
  pass. One *operation* is one add, compare, logic op or multiply-accumulate (so one MAC of
  a CNN counts as one operation, as a Cortex-M4 issues a MAC per cycle). It is a counting
  model, not a cycle count; each constant is stated in :data:`OPS_MODEL` with its reason.

The cost model and the scene generator are our own (no library counts the operations of a
classical vision pipeline); the vision and learning parts are OpenCV and scikit-learn.

Example:
    >>> frames = generate_frames(4, seed=0)
    >>> frames[0].gray.shape, frames[0].mask.dtype.name
    ((72, 96), 'uint8')
    >>> blobs = detect_blobs(clean_mask(frames[0].mask))
    >>> all(b.area >= MIN_BLOB_AREA for b in blobs)
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import cv2
import numpy as np

__all__ = [
    "CLASSES", "FEATURE_NAMES", "MIN_BLOB_AREA", "CROP_SIZE", "OPS_MODEL",
    "SceneConfig", "Frame", "Blob", "BlobSet",
    "generate_frames", "render_person", "render_car",
    "clean_mask", "detect_blobs", "blob_features", "moments_by_hand", "hu_log",
    "box_iou", "match_detections", "crop_for_cnn", "run_blob_stage",
    "train_svm", "svm_ops", "svm_rbf_ops", "svm_memory_bytes", "blob_stage_ops",
    "classical_costs", "resize_ops", "noise_size_grid", "tiny_cnn",
]

CLASSES = ("person", "car")
FEATURE_NAMES = ("log_area", "aspect_ratio", "extent") + tuple(f"hu{i}" for i in range(1, 8))
MIN_BLOB_AREA = 12          # pixels: smaller blobs are treated as noise
MIN_VISIBLE_AREA = 6        # pixels: an object this visible counts; blobs under MIN_BLOB_AREA are missed
CROP_SIZE = 32              # side of the square crops the CNN sees
_SUPERSAMPLE = 4            # objects are drawn at 4x and area-averaged: soft, realistic edges

# Operations counting model (see the module docstring). Each entry: (ops, why).
OPS_MODEL: dict[str, tuple[int, str]] = {
    "majority_3x3_per_pixel": (9, "3x3 median of a binary mask = majority vote: 8 adds + 1 compare"),
    "dilate_3x3_per_pixel": (8, "OR of the 9 neighbours: 8 ORs"),
    "erode_3x3_per_pixel": (8, "AND of the 9 neighbours: 8 ANDs"),
    "scan_per_pixel": (2, "Suzuki-Abe raster scan: test the pixel and its left neighbour for a border start"),
    "trace_per_contour_pixel": (8, "border following: up to 8 neighbour tests per border pixel (upper bound)"),
    "bbox_per_contour_pixel": (4, "bounding box: min/max of x and y over the border pixels"),
    "inside_test_per_box_pixel": (1, "is this pixel of the box part of the blob? 1 test"),
    "moments_per_blob_pixel": (17, "raw moments to order 3: 7 multiplies for x^2,x^3,y^2,y^3,xy,x^2y,xy^2 + 10 accumulates"),
    "hu_per_blob": (80, "central + normalised moments from the raw ones and the 7 Hu invariants (~80 arithmetic ops)"),
    "log": (20, "one log10, by a small polynomial approximation"),
    "divide": (1, "one division (hardware divider)"),
    "exp": (20, "one exp, by a small polynomial approximation"),
    "resize_per_output_pixel": (8, "bilinear resize: 4 multiplies for the 4 tap weights + 4 multiply-accumulates"),
}


def _ops(name: str) -> int:
    return OPS_MODEL[name][0]


# --------------------------------------------------------------------------------------
# Scene generator
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneConfig:
    """Settings of the synthetic sensor.

    ``noise`` scales every noise source at once (0 = a perfect sensor, 1 = the default
    sensor, 3 = a bad day); ``size_scale`` scales every object.

    Example:
        >>> SceneConfig(noise=2.0).mask_flip_rate
        0.02
    """
    height: int = 72
    width: int = 96
    min_objects: int = 1
    max_objects: int = 4
    p_car: float = 0.5
    size_scale: float = 1.0
    noise: float = 1.0
    sensor_sigma: float = 5.0        # gray-level noise std (0..255) at noise=1
    flip_rate: float = 0.01          # salt-and-pepper fraction of mask pixels at noise=1
    blur_sigma: float = 0.7          # optics blur in pixels
    threshold: int = 24              # background-subtraction threshold (gray levels)

    @property
    def mask_flip_rate(self) -> float:
        return round(self.flip_rate * self.noise, 6)

    def validate(self) -> "SceneConfig":
        if self.height < 16 or self.width < 16:
            raise ValueError(f"frames must be at least 16x16 pixels, got {self.height}x{self.width}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 0 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if not 0.0 <= self.p_car <= 1.0:
            raise ValueError(f"p_car is a probability in [0, 1], got {self.p_car}")
        if not 0.1 <= self.size_scale <= 4.0:
            raise ValueError(f"size_scale must lie in [0.1, 4] (1 = default sizes), got {self.size_scale}")
        if not 0.0 <= self.noise <= 20.0:
            raise ValueError(f"noise must lie in [0, 20] (0 = perfect sensor, 1 = default), got {self.noise}")
        return self


@dataclass
class Frame:
    """One sensor frame: ``gray`` (H, W) uint8, ``mask`` (H, W) uint8 in {0, 255}, and the
    ground truth: ``boxes`` (n, 4) int as ``x, y, w, h`` of the visible part, ``labels`` (n,)."""
    gray: np.ndarray
    mask: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    background: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random scene: sky-to-ground gradient, low-frequency texture, a few static structures."""
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    base = rng.uniform(70, 150) + rng.uniform(-40, 40) * ys + np.zeros((h, w), np.float32)
    coarse = rng.normal(0, 12, size=(4, 5)).astype(np.float32)
    base += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(1, 4)):  # buildings, poles, benches: static, so not in the mask
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h // 2))
        bw, bh = int(rng.integers(4, w // 3)), int(rng.integers(4, h // 2))
        base[y0:y0 + bh, x0:x0 + bw] += rng.uniform(-30, 30)
    return base


def render_person(canvas: np.ndarray, feet_x: float, feet_y: float, height: float,
                  rng: np.random.Generator, value: int = 255) -> None:
    """Draw an articulated walking person (hi-res pixels) into ``canvas`` in place.

    Head, torso, two arms swinging and two legs striding (each leg bends at the knee), a
    slight lean; all proportions jitter a little from person to person.

    Example:
        >>> c = np.zeros((120, 80), np.uint8); render_person(c, 40, 110, 100, np.random.default_rng(0))
        >>> bool(0.15 < (c > 0).mean() < 0.5)
        True
    """
    h = float(height)
    jit = lambda s: 1.0 + rng.uniform(-s, s)  # noqa: E731
    lean = rng.uniform(-0.06, 0.06) * h
    top = feet_y - h
    head_r = 0.075 * h * jit(0.12)
    neck_y, hip_y = top + 2 * head_r, top + 0.52 * h * jit(0.04)
    shoulder_y = neck_y + 0.04 * h
    cx_top, cx_hip = feet_x + lean, feet_x + 0.4 * lean
    half_torso = 0.11 * h * jit(0.2)

    def pt(x: float, y: float) -> tuple[int, int]:
        return int(round(x)), int(round(y))

    cv2.circle(canvas, pt(cx_top, top + head_r), max(1, int(round(head_r))), value, -1, cv2.LINE_AA)
    torso = np.array([pt(cx_top - half_torso, shoulder_y), pt(cx_top + half_torso, shoulder_y),
                      pt(cx_hip + 0.85 * half_torso, hip_y), pt(cx_hip - 0.85 * half_torso, hip_y)], np.int32)
    cv2.fillConvexPoly(canvas, torso, value, cv2.LINE_AA)
    cv2.line(canvas, pt(cx_top, top + head_r), pt(cx_top, shoulder_y), value, max(1, int(0.06 * h)), cv2.LINE_AA)
    stride = rng.uniform(0.0, 0.45)  # radians: 0 = standing, 0.45 = a long step
    leg_len, leg_w = (feet_y - hip_y), max(1, int(round(0.085 * h * jit(0.2))))
    for side in (-1, 1):
        angle = side * stride
        knee_bend = rng.uniform(0, 0.35) if side * rng.choice([-1, 1]) > 0 else 0.0
        hip = (cx_hip + side * 0.45 * half_torso, hip_y)
        knee = (hip[0] + math.sin(angle) * leg_len / 2, hip[1] + math.cos(angle) * leg_len / 2)
        foot = (knee[0] + math.sin(angle - knee_bend) * leg_len / 2,
                min(feet_y, knee[1] + math.cos(angle - knee_bend) * leg_len / 2))
        cv2.line(canvas, pt(*hip), pt(*knee), value, leg_w, cv2.LINE_AA)
        cv2.line(canvas, pt(*knee), pt(*foot), value, leg_w, cv2.LINE_AA)
        swing = -side * stride * rng.uniform(0.6, 1.4)
        arm_len, arm_w = 0.36 * h * jit(0.1), max(1, int(round(0.06 * h)))
        shoulder = (cx_top + side * half_torso * 0.95, shoulder_y + 0.02 * h)
        hand = (shoulder[0] + math.sin(swing) * arm_len, shoulder[1] + math.cos(swing) * arm_len)
        cv2.line(canvas, pt(*shoulder), pt(*hand), value, arm_w, cv2.LINE_AA)


def render_car(canvas: np.ndarray, center_x: float, ground_y: float, length: float,
               rng: np.random.Generator, value: int = 255, wheel_value: int | None = None) -> None:
    """Draw a car seen from the side (hi-res pixels) into ``canvas`` in place.

    A body, a cabin (sedan, hatchback or van profile), two wheels; facing left or right.

    Example:
        >>> c = np.zeros((80, 160), np.uint8); render_car(c, 80, 70, 140, np.random.default_rng(0))
        >>> bool(0.2 < (c > 0).mean() < 0.7)
        True
    """
    w = float(length)
    kind = rng.choice(["sedan", "hatch", "van"])
    flip = rng.random() < 0.5
    wheel_r = 0.105 * w * (1.0 + rng.uniform(-0.1, 0.1))
    body_h = (0.2 if kind != "van" else 0.24) * w
    body_bottom = ground_y - 0.9 * wheel_r
    body_top = body_bottom - body_h
    cabin_h = {"sedan": 0.17, "hatch": 0.18, "van": 0.26}[kind] * w
    left = center_x - w / 2
    # cabin profile as fractions of the length: (base start, top start, top end, base end)
    prof = {"sedan": (0.2, 0.32, 0.66, 0.8), "hatch": (0.18, 0.3, 0.86, 0.92),
            "van": (0.04, 0.12, 0.98, 0.98)}[kind]
    xs = [p if not flip else 1.0 - p for p in prof]

    def pt(fx: float, y: float) -> tuple[int, int]:
        return int(round(left + fx * w)), int(round(y))

    body = np.array([pt(0.0, body_bottom), pt(0.0, body_top + 0.3 * body_h), pt(0.04 if not flip else 0.96, body_top),
                     pt(0.96 if not flip else 0.04, body_top), pt(1.0, body_top + 0.25 * body_h), pt(1.0, body_bottom)],
                    np.int32)
    cv2.fillPoly(canvas, [body], value, cv2.LINE_AA)
    cabin = np.array([pt(xs[0], body_top + 1), pt(xs[1], body_top - cabin_h), pt(xs[2], body_top - cabin_h),
                      pt(xs[3], body_top + 1)], np.int32)
    cv2.fillPoly(canvas, [cabin], value, cv2.LINE_AA)
    wv = value if wheel_value is None else wheel_value
    for fx in (0.2, 0.8):
        cx, cy = pt(fx, ground_y - wheel_r)
        cv2.circle(canvas, (cx, cy), max(1, int(round(wheel_r))), wv, -1, cv2.LINE_AA)


def _one_frame(rng: np.random.Generator, cfg: SceneConfig) -> Frame:
    h, w, s = cfg.height, cfg.width, _SUPERSAMPLE
    background = _background(rng, h, w)
    n_obj = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    objects: list[tuple[float, int, float, float]] = []
    spans: list[tuple[float, float, float, float]] = []
    for _ in range(n_obj):
        for _attempt in range(6):  # mostly apart; sometimes one occludes another
            label = int(rng.random() < cfg.p_car)
            feet_y = rng.uniform(0.45 * h, 1.1 * h)            # below the frame bottom: cut by the edge
            depth = (0.5 + 0.6 * feet_y / h) * cfg.size_scale   # ground-plane perspective: nearer = bigger
            size = (rng.uniform(16, 22) if label == 0 else rng.uniform(24, 34)) * depth
            x = rng.uniform(-0.08 * w, 1.08 * w)               # beyond the sides: cut by the edge
            half = 0.2 * size if label == 0 else 0.5 * size
            span = (x - half, x + half, feet_y - (size if label == 0 else 0.5 * size), feet_y)
            overlaps = any(min(span[1], o[1]) > max(span[0], o[0]) and min(span[3], o[3]) > max(span[2], o[2])
                           for o in spans)
            if not overlaps or rng.random() < 0.25:
                break
        objects.append((feet_y, label, x, size))
        spans.append(span)
    objects.sort(key=lambda o: o[0])                       # far first: near objects occlude them

    hi_h, hi_w = h * s, w * s
    scene_hi = cv2.resize(background, (hi_w, hi_h), interpolation=cv2.INTER_LINEAR)
    ids = np.zeros((hi_h, hi_w), np.uint8)
    layer = np.zeros((hi_h, hi_w), np.uint8)
    for k, (feet_y, label, x, size) in enumerate(objects, start=1):
        layer[:] = 0
        # objects contrast with the local background, either darker or brighter
        local = float(background[int(np.clip(feet_y - 1, 0, h - 1)), int(np.clip(x, 0, w - 1))])
        sign = 1 if (local < 100 or (local < 160 and rng.random() < 0.5)) else -1
        shade = float(np.clip(local + sign * rng.uniform(40, 90), 5, 250))
        if label == 0:
            render_person(layer, x * s, feet_y * s, size * s, rng, value=255)
        else:
            render_car(layer, x * s, feet_y * s, size * s, rng, value=255, wheel_value=255)
        bx, by, bw, bh = cv2.boundingRect(layer)
        if bw == 0 or bh == 0:
            continue
        roi = (slice(by, by + bh), slice(bx, bx + bw))
        alpha = layer[roi].astype(np.float32) / 255.0
        texture = shade + cv2.resize(rng.normal(0, 6, size=(3, 3)).astype(np.float32), (bw, bh),
                                     interpolation=cv2.INTER_LINEAR)
        scene_hi[roi] = scene_hi[roi] * (1 - alpha) + texture * alpha
        ids[roi][layer[roi] > 127] = k
    clean = cv2.resize(scene_hi, (w, h), interpolation=cv2.INTER_AREA)
    if cfg.blur_sigma > 0:
        clean = cv2.GaussianBlur(clean, (0, 0), cfg.blur_sigma)
    sigma = cfg.sensor_sigma * cfg.noise
    gray = np.clip(clean + rng.normal(0, sigma, size=(h, w)), 0, 255).astype(np.uint8)
    # The sensor's background model is itself a noisy estimate of the empty scene.
    bg_model = cv2.GaussianBlur(background, (0, 0), cfg.blur_sigma) if cfg.blur_sigma > 0 else background
    bg_model = bg_model + rng.normal(0, 0.5 * sigma, size=(h, w))
    mask = (np.abs(gray.astype(np.float32) - bg_model) > cfg.threshold).astype(np.uint8) * 255
    flips = rng.random((h, w)) < cfg.mask_flip_rate
    mask[flips] = 255 - mask[flips]

    boxes, labels = [], []
    ids_lo = cv2.resize(ids, (w, h), interpolation=cv2.INTER_NEAREST)
    for k, (_, label, _, _) in enumerate(objects, start=1):
        ys, xs = np.nonzero(ids_lo == k)
        if len(xs) < MIN_VISIBLE_AREA:
            continue  # hidden behind a nearer object or outside the frame
        x0, y0 = int(xs.min()), int(ys.min())
        boxes.append((x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1))
        labels.append(label)
    return Frame(gray=gray, mask=mask, boxes=np.array(boxes, np.int64).reshape(-1, 4),
                 labels=np.array(labels, np.int64), background=background.astype(np.float32))


def generate_frames(n: int, seed: int = 0, config: SceneConfig | None = None, **overrides: Any) -> list[Frame]:
    """``n`` synthetic sensor frames with ground truth; the same seed gives the same frames.

    Keyword overrides change single :class:`SceneConfig` fields, e.g. ``noise=2.0``.

    Example:
        >>> f = generate_frames(2, seed=1, noise=0.0)
        >>> len(f), f[0].boxes.shape[1]
        (2, 4)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive number of frames, got {n!r}")
    cfg = replace(config or SceneConfig(), **overrides).validate()
    rng = np.random.default_rng(seed)
    return [_one_frame(rng, cfg) for _ in range(int(n))]


# --------------------------------------------------------------------------------------
# Blob stage
# --------------------------------------------------------------------------------------
_KERNEL3 = np.ones((3, 3), np.uint8)


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"the mask must be a 2-D (height, width) image, got shape {mask.shape}")
    if mask.dtype != np.uint8:
        if mask.dtype == bool or set(np.unique(mask)).issubset({0, 1}):
            return mask.astype(np.uint8) * 255
        raise ValueError(f"the mask must be uint8 (0/255) or boolean, got dtype {mask.dtype}")
    return mask


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Remove salt-and-pepper noise and close small gaps: 3x3 majority (median), then 3x3 closing.

    Example:
        >>> m = np.zeros((10, 10), np.uint8); m[5, 5] = 255   # a lone noise pixel
        >>> int(clean_mask(m).max())
        0
    """
    mask = _check_mask(mask)
    out = cv2.medianBlur(mask, 3)
    return cv2.morphologyEx(out, cv2.MORPH_CLOSE, _KERNEL3)


@dataclass
class Blob:
    """One detected blob: ``box`` (x, y, w, h), ``contour`` (border pixels, (n, 1, 2)),
    ``pixels`` (h, w) uint8 0/1 mask of the blob inside its box (holes stay 0), ``holes``."""
    box: tuple[int, int, int, int]
    contour: np.ndarray
    pixels: np.ndarray
    holes: int

    @property
    def area(self) -> int:
        return int(self.pixels.sum())


def detect_blobs(mask: np.ndarray, min_area: int = MIN_BLOB_AREA) -> list[Blob]:
    """Blobs of a binary mask by Suzuki-Abe border following (``cv2.findContours``).

    ``RETR_CCOMP`` returns a two-level hierarchy: outer borders (parent -1) and the borders of
    their holes (their children). Each outer border is one blob; its pixels are the filled
    outer border AND the mask, so holes stay empty.

    Example:
        >>> m = np.zeros((20, 20), np.uint8); m[4:12, 5:9] = 255
        >>> [b.box for b in detect_blobs(m)]
        [(5, 4, 4, 8)]
    """
    mask = _check_mask(mask)
    if min_area < 1:
        raise ValueError(f"min_area must be >= 1 pixel, got {min_area}")
    contours, hierarchy = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    blobs: list[Blob] = []
    if hierarchy is None:
        return blobs
    hierarchy = hierarchy[0]
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:
            continue  # a hole's border: belongs to its parent blob
        x, y, w, h = cv2.boundingRect(contour)
        filled = np.zeros((h, w), np.uint8)
        cv2.drawContours(filled, [contour - np.array([x, y])], -1, 1, thickness=cv2.FILLED)
        pixels = filled & (mask[y:y + h, x:x + w] > 0)
        if int(pixels.sum()) < min_area:
            continue
        holes, child = 0, hierarchy[i][2]
        while child != -1:
            holes, child = holes + 1, hierarchy[child][0]
        blobs.append(Blob(box=(x, y, w, h), contour=contour, pixels=pixels.astype(np.uint8), holes=holes))
    return blobs


def moments_by_hand(binary: np.ndarray) -> np.ndarray:
    """``[m00, cx, cy, mu20, mu11, mu02]`` of a binary image, with NumPy only.

    ``m00`` is the pixel count, ``(cx, cy)`` the centroid (x = column, y = row), and the
    central moments ``mu_pq = sum (x - cx)^p (y - cy)^q`` over the blob's pixels. Same
    values as ``cv2.moments(binary, binaryImage=True)``.

    Example:
        >>> b = np.zeros((5, 5), np.uint8); b[1:3, 1:4] = 1
        >>> moments_by_hand(b).round(3).tolist()
        [6.0, 2.0, 1.5, 4.0, 0.0, 1.5]
    """
    b = np.asarray(binary)
    if b.ndim != 2:
        raise ValueError(f"expected a 2-D binary image, got shape {b.shape}")
    ys, xs = np.nonzero(b)
    m00 = float(len(xs))
    if m00 == 0:
        raise ValueError("the blob is empty: moments of zero pixels are undefined")
    cx, cy = xs.mean(), ys.mean()
    dx, dy = xs - cx, ys - cy
    return np.array([m00, cx, cy, (dx * dx).sum(), (dx * dy).sum(), (dy * dy).sum()])


def hu_log(hu: np.ndarray) -> np.ndarray:
    """Log-scale Hu invariants (they span ~10 orders of magnitude): ``-sign(h) log10 |h|``.

    Example:
        >>> hu_log(np.array([1e-3, -1e-6])).tolist()
        [3.0, -6.0]
    """
    hu = np.asarray(hu, dtype=np.float64).ravel()
    return -np.sign(hu) * np.log10(np.abs(hu) + 1e-30)


def blob_features(blob: Blob | np.ndarray) -> np.ndarray:
    """The 10 features of a blob (see :data:`FEATURE_NAMES`) as float32.

    Log area, aspect ratio (width / height), extent (area / box area) and the seven
    log-scaled Hu moment invariants of the blob's pixels.

    Example:
        >>> b = np.zeros((8, 4), np.uint8); b[:, :] = 1
        >>> [round(float(v), 3) for v in blob_features(b)[:3]]
        [1.505, 0.5, 1.0]
    """
    pixels = blob.pixels if isinstance(blob, Blob) else np.asarray(blob)
    if pixels.ndim != 2 or pixels.sum() == 0:
        raise ValueError("blob_features needs a non-empty 2-D blob (a Blob or a 0/1 array)")
    h, w = pixels.shape
    m = cv2.moments(pixels.astype(np.uint8), binaryImage=True)
    area = m["m00"]
    hu = cv2.HuMoments(m).ravel()
    return np.concatenate([[math.log10(area), w / h, area / (w * h)], hu_log(hu)]).astype(np.float32)


# --------------------------------------------------------------------------------------
# Matching and datasets
# --------------------------------------------------------------------------------------
def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes.

    Example:
        >>> box_iou((0, 0, 4, 4), (2, 0, 4, 4))
        0.3333333333333333
    """
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return float(inter / union) if union > 0 else 0.0


def match_detections(det_boxes: Sequence[Sequence[float]], gt_boxes: Sequence[Sequence[float]],
                     iou_threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching by IoU: ``[(det_index, gt_index, iou), ...]``.

    Example:
        >>> match_detections([(0, 0, 4, 4), (10, 10, 2, 2)], [(1, 0, 4, 4)])
        [(0, 0, 0.6)]
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    pairs = sorted(((box_iou(d, g), i, j) for i, d in enumerate(det_boxes) for j, g in enumerate(gt_boxes)),
                   reverse=True)
    used_d, used_g, out = set(), set(), []
    for iou, i, j in pairs:
        if iou < iou_threshold:
            break
        if i in used_d or j in used_g:
            continue
        used_d.add(i), used_g.add(j)
        out.append((i, j, round(iou, 6)))
    return sorted(out)


def crop_for_cnn(gray: np.ndarray, box: Sequence[int], size: int = CROP_SIZE) -> np.ndarray:
    """A square ``size`` x ``size`` float32 crop (0..1) around a box, aspect ratio kept.

    The square's side is 1.15 x the box's longer side; the frame's border is replicated
    where the square leaves the frame.

    Example:
        >>> crop_for_cnn(np.zeros((60, 80), np.uint8), (10, 10, 5, 20)).shape
        (32, 32)
    """
    x, y, w, h = (int(v) for v in box)
    side = max(4, int(math.ceil(1.15 * max(w, h))))
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    pad = side
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    window = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
    return cv2.resize(window, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0


@dataclass
class BlobSet:
    """Everything the blob stage produced on a list of frames.

    ``features`` (N, 10), ``crops`` (N, 32, 32) and ``labels`` (N,) of the blobs matched to a
    ground-truth object; detection counts for recall / precision; per-frame blob lists.
    """
    features: np.ndarray
    crops: np.ndarray
    labels: np.ndarray
    n_gt: int
    n_det: int
    n_matched: int
    blobs: list[list[Blob]]
    matches: list[list[tuple[int, int, float]]]

    @property
    def recall(self) -> float:
        return self.n_matched / self.n_gt if self.n_gt else float("nan")

    @property
    def precision(self) -> float:
        return self.n_matched / self.n_det if self.n_det else float("nan")


def run_blob_stage(frames: Sequence[Frame], iou_threshold: float = 0.5, min_area: int = MIN_BLOB_AREA,
                   crop_size: int = CROP_SIZE, progress: bool = False) -> BlobSet:
    """Clean each mask, detect blobs, match them to ground truth, and collect features and crops.

    Example:
        >>> s = run_blob_stage(generate_frames(3, seed=0))
        >>> s.features.shape[1], 0.0 <= s.recall <= 1.0
        (10, True)
    """
    if not frames:
        raise ValueError("run_blob_stage needs at least one frame")
    iterator: Any = frames
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(frames, desc="blob stage", unit="frame")
    feats, crops, labels, all_blobs, all_matches = [], [], [], [], []
    n_gt = n_det = n_matched = 0
    for frame in iterator:
        blobs = detect_blobs(clean_mask(frame.mask), min_area=min_area)
        matches = match_detections([b.box for b in blobs], frame.boxes.tolist(), iou_threshold)
        n_gt += len(frame.boxes)
        n_det += len(blobs)
        n_matched += len(matches)
        for i, j, _ in matches:
            feats.append(blob_features(blobs[i]))
            crops.append(crop_for_cnn(frame.gray, blobs[i].box, crop_size))
            labels.append(int(frame.labels[j]))
        all_blobs.append(blobs)
        all_matches.append(matches)
    return BlobSet(features=np.array(feats, np.float32).reshape(-1, len(FEATURE_NAMES)),
                   crops=np.array(crops, np.float32).reshape(-1, crop_size, crop_size),
                   labels=np.array(labels, np.int64), n_gt=n_gt, n_det=n_det, n_matched=n_matched,
                   blobs=all_blobs, matches=all_matches)


# --------------------------------------------------------------------------------------
# Classifier and costs
# --------------------------------------------------------------------------------------
def train_svm(features: np.ndarray, labels: np.ndarray, kernel: str = "rbf", C: float = 10.0) -> Any:
    """A scikit-learn pipeline ``StandardScaler -> SVC`` fitted on blob features.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
        >>> train_svm(X, y, kernel="linear").score(X, y) > 0.9
        True
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    X, y = np.asarray(features), np.asarray(labels)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"features must be (N, d) with one label each; got {X.shape} and {y.shape}")
    if len(np.unique(y)) < 2:
        raise ValueError("the training set holds a single class: generate more frames so both "
                         "people and cars are detected")
    if kernel not in ("rbf", "linear"):
        raise ValueError(f"kernel must be 'rbf' or 'linear', got {kernel!r}")
    return make_pipeline(StandardScaler(), SVC(kernel=kernel, C=C, gamma="scale")).fit(X, y)


def svm_rbf_ops(n_support: int, n_features: int) -> int:
    """Operations of one RBF-SVM decision ``sign(sum_i a_i exp(-g ||x - s_i||^2) + b)``.

    Per support vector: ``d`` subtractions and ``d`` multiply-accumulates (the squared
    distance), 1 multiply by gamma, one exp (:data:`OPS_MODEL` ``exp``) and 1
    multiply-accumulate with the dual coefficient; then 1 add (bias) and 1 compare (sign).

    Example:
        >>> svm_rbf_ops(100, 10)
        4202
    """
    for name, v in (("n_support", n_support), ("n_features", n_features)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(n_support) * (2 * int(n_features) + 1 + _ops("exp") + 1) + 2


def _svc(model: Any) -> Any:
    svc = model.steps[-1][1] if hasattr(model, "steps") else model
    if not hasattr(svc, "support_vectors_"):
        raise ValueError("expected a fitted sklearn SVC (or a pipeline ending in one); fit it first")
    return svc


def svm_ops(model: Any) -> int:
    """Operations of classifying one feature vector: the scaler (2 per feature) plus the SVM.

    A linear SVM folds its support vectors into one weight vector: ``d`` MACs + 1 compare.

    Example:
        >>> X = np.eye(4); y = np.array([0, 1, 0, 1])
        >>> svm_ops(train_svm(X, y, kernel="linear"))
        14
    """
    svc = _svc(model)
    d = svc.support_vectors_.shape[1]
    scaler_ops = 2 * d if hasattr(model, "steps") and len(model.steps) > 1 else 0
    if svc.kernel == "linear":
        return scaler_ops + d + 2
    if svc.kernel == "rbf":
        return scaler_ops + svm_rbf_ops(int(svc.support_vectors_.shape[0]), d)
    raise ValueError(f"no operation model for kernel {svc.kernel!r}; use 'rbf' or 'linear'")


def svm_memory_bytes(model: Any, dtype_bytes: int = 4) -> dict[str, int]:
    """Read-only model bytes (flash) and working bytes (RAM) of the SVM, float32 by default.

    Example:
        >>> X = np.eye(4); y = np.array([0, 1, 0, 1])
        >>> svm_memory_bytes(train_svm(X, y, kernel="linear"))["flash"]
        52
    """
    svc = _svc(model)
    n_sv, d = svc.support_vectors_.shape
    scaler = 2 * d if hasattr(model, "steps") and len(model.steps) > 1 else 0
    stored = (d + 1) if svc.kernel == "linear" else (n_sv * d + n_sv + 1)
    return {"flash": (stored + scaler) * dtype_bytes, "ram": (d + 1) * dtype_bytes,
            "parameters": stored + scaler}


def blob_stage_ops(height: int, width: int, contour_pixels: int, box_pixels: int, blob_pixels: int,
                   n_blobs: int) -> dict[str, int]:
    """Operations of the blob stage on one frame, pass by pass (see :data:`OPS_MODEL`).

    Example:
        >>> ops = blob_stage_ops(10, 10, contour_pixels=20, box_pixels=30, blob_pixels=25, n_blobs=1)
        >>> ops["majority_filter"], ops["total"]
        (900, 3637)
    """
    for name, v in (("height", height), ("width", width)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    pixels = int(height) * int(width)
    n_logs = len(FEATURE_NAMES) - 2  # log area + 7 Hu
    ops = {
        "majority_filter": pixels * _ops("majority_3x3_per_pixel"),
        "closing": pixels * (_ops("dilate_3x3_per_pixel") + _ops("erode_3x3_per_pixel")),
        "border_scan": pixels * _ops("scan_per_pixel"),
        "border_trace": int(contour_pixels) * _ops("trace_per_contour_pixel"),
        "bounding_boxes": int(contour_pixels) * _ops("bbox_per_contour_pixel"),
        "moments": int(box_pixels) * _ops("inside_test_per_box_pixel") + int(blob_pixels) * _ops("moments_per_blob_pixel"),
        "features": int(n_blobs) * (_ops("hu_per_blob") + n_logs * _ops("log") + 2 * _ops("divide")),
    }
    ops["total"] = sum(ops.values())
    return ops


def resize_ops(size: int = CROP_SIZE) -> int:
    """Operations to resample one blob's window to a ``size`` x ``size`` CNN input (bilinear).

    Example:
        >>> resize_ops(32)
        8192
    """
    return int(size) * int(size) * _ops("resize_per_output_pixel")


def classical_costs(frames: Sequence[Frame], blob_set: BlobSet, svm: Any,
                    bytes_per_pixel: int = 1) -> dict[str, Any]:
    """Per-frame operations and working memory of the pipeline, measured on real frames.

    Returns mean and max operations per frame of the blob stage and of blob stage + SVM, the
    mean number of blobs, the per-stage breakdown (mean), and the working memory (max over
    frames): the sensor's mask, one scratch frame for the filters (border following marks its
    labels in place), every contour point (two int16), the feature vectors (float32) and the
    SVM's working bytes; ``blob_stage_memory_bytes`` is the same without the SVM's share.

    Example:
        >>> fr = generate_frames(6, seed=0); bs = run_blob_stage(fr)
        >>> c = classical_costs(fr, bs, train_svm(bs.features, bs.labels))
        >>> c["ops_per_frame_mean"] > c["blob_stage_ops_mean"] > 0
        True
    """
    if len(frames) != len(blob_set.blobs):
        raise ValueError(f"{len(frames)} frames but the blob set holds {len(blob_set.blobs)}: "
                         "pass the same frames you ran run_blob_stage on")
    per_svm = svm_ops(svm)
    svm_mem = svm_memory_bytes(svm)
    d = len(FEATURE_NAMES)
    stage_rows, totals, mems, blob_mems = [], [], [], []
    for frame, blobs in zip(frames, blob_set.blobs):
        h, w = frame.mask.shape
        contour = sum(len(b.contour) for b in blobs)
        box = sum(b.box[2] * b.box[3] for b in blobs)
        fg = sum(b.area for b in blobs)
        ops = blob_stage_ops(h, w, contour, box, fg, len(blobs))
        stage_rows.append(ops)
        totals.append(ops["total"] + len(blobs) * per_svm)
        blob_mems.append(2 * h * w * bytes_per_pixel + 4 * contour)
        mems.append(blob_mems[-1] + 4 * d * len(blobs) + svm_mem["ram"])
    keys = [k for k in stage_rows[0] if k != "total"]
    breakdown = {k: float(np.mean([r[k] for r in stage_rows])) for k in keys}
    breakdown["svm"] = float(np.mean([len(b) for b in blob_set.blobs]) * per_svm)
    return {
        "blob_stage_ops_mean": float(np.mean([r["total"] for r in stage_rows])),
        "ops_per_frame_mean": float(np.mean(totals)),
        "ops_per_frame_max": int(np.max(totals)),
        "blobs_per_frame_mean": float(np.mean([len(b) for b in blob_set.blobs])),
        "svm_ops_per_blob": per_svm,
        "working_memory_bytes": int(np.max(mems)),
        "blob_stage_memory_bytes": int(np.max(blob_mems)),
        "svm_flash_bytes": svm_mem["flash"],
        "svm_parameters": svm_mem["parameters"],
        "breakdown": breakdown,
    }


# --------------------------------------------------------------------------------------
# Where the pipeline breaks: a precomputed grid for the widget
# --------------------------------------------------------------------------------------
def noise_size_grid(svm: Any, noises: Sequence[float], sizes: Sequence[float], n_frames: int = 30,
                    seed: int = 123, crop_classifier: Callable[[np.ndarray], np.ndarray] | None = None,
                    progress: bool = True) -> list[dict[str, Any]]:
    """Recall, precision and accuracy of the pipeline on fresh frames for each (noise, size).

    ``crop_classifier(crops (N, 32, 32)) -> predicted labels`` (e.g. the CNN) is scored on the
    same matched blobs when given. Each row also counts what its accuracies rest on:
    ``n_matched`` blobs, of which ``svm_correct`` / ``cnn_correct`` were classified right, and
    keeps the per-blob hits (``svm_hits``, ``cnn_hits``) for paired comparisons (a cell with 2
    matched blobs can only say 0, 50 or 100 %: plots and tables show it as "too few").
    Each row keeps the first frame and its detections so a widget can draw it without
    recomputing.

    Example:
        >>> fr = generate_frames(8, seed=0); bs = run_blob_stage(fr)
        >>> rows = noise_size_grid(train_svm(bs.features, bs.labels), [0.0, 2.0], [1.0], n_frames=2, progress=False)
        >>> rows[0]['n_matched'] == len(rows[0]['svm_hits'])
        True
    """
    if not noises or not sizes:
        raise ValueError("give at least one noise level and one size scale")
    cells = [(float(nz), float(sz)) for nz in noises for sz in sizes]
    iterator: Any = cells
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(cells, desc="noise x size grid", unit="cell")
    rows = []
    for noise, size in iterator:
        frames = generate_frames(n_frames, seed=seed, noise=noise, size_scale=size)
        bs = run_blob_stage(frames)
        acc = cnn_acc = float("nan")
        svm_hits = cnn_hits = np.zeros(0, bool)
        if len(bs.labels):
            svm_hits = svm.predict(bs.features) == bs.labels
            acc = float(svm_hits.mean())
            if crop_classifier is not None:
                cnn_hits = np.asarray(crop_classifier(bs.crops)) == bs.labels
                cnn_acc = float(cnn_hits.mean())
        first = frames[0]
        blobs = bs.blobs[0]
        preds = svm.predict(np.array([blob_features(b) for b in blobs])) if blobs else np.zeros(0, int)
        rows.append({"noise": noise, "size": size, "recall": bs.recall, "precision": bs.precision,
                     "accuracy": acc, "cnn_accuracy": cnn_acc, "n_gt": bs.n_gt, "n_det": bs.n_det,
                     "n_matched": int(len(bs.labels)), "svm_correct": int(svm_hits.sum()),
                     "cnn_correct": int(cnn_hits.sum()), "svm_hits": svm_hits, "cnn_hits": cnn_hits,
                     "example": {"gray": first.gray, "mask": first.mask, "gt_boxes": first.boxes,
                                 "gt_labels": first.labels, "det_boxes": [b.box for b in blobs],
                                 "det_labels": [int(p) for p in preds]}})
    return rows


def format_grid_table(rows: Sequence[dict[str, Any]], min_samples: int = 10) -> str:
    """The noise x size grid as text: ``recall / SVM / CNN`` accuracy (%) per cell.

    A cell whose accuracies rest on fewer than ``min_samples`` matched blobs shows
    ``too few (n=3)`` instead of percentages that could only be 0, 33, 67 or 100.

    Example:
        >>> rows = [dict(noise=1.0, size=1.0, recall=.9, accuracy=.95, cnn_accuracy=.9, n_matched=40),
        ...         dict(noise=5.0, size=1.0, recall=.03, accuracy=1.0, cnn_accuracy=.5, n_matched=2)]
        >>> print(format_grid_table(rows))
        blob recall / SVM accuracy / CNN accuracy (%), fresh frames
        noise | size                    1
                   1         90 / 95 / 90
                   5    3 / too few (n=2)
    """
    noises = sorted({r["noise"] for r in rows})
    sizes = sorted({r["size"] for r in rows})
    lines = ["blob recall / SVM accuracy / CNN accuracy (%), fresh frames",
             "noise | size " + "".join(f"{s:>20g}" for s in sizes)]
    for nz in noises:
        cells = []
        for sz in sizes:
            r = next(x for x in rows if x["noise"] == nz and x["size"] == sz)
            if r.get("n_matched", min_samples) < min_samples:
                cells.append(f"{100 * r['recall']:.0f} / too few (n={r['n_matched']})")
            else:
                cells.append(f"{100 * r['recall']:.0f} / {100 * r['accuracy']:.0f} / {100 * r['cnn_accuracy']:.0f}")
        lines.append(f"{nz:>12g} " + "".join(f"{c:>20}" for c in cells))
    return "\n".join(lines)


def tiny_cnn(num_classes: int = 2, crop_size: int = CROP_SIZE, seed: int = 0) -> Any:
    """A tiny micromind PhiNet for the blob crops (``(1, crop_size, crop_size)`` inputs).

    Example:
        >>> import torch
        >>> tiny_cnn()(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 2])
    """
    from .models.phinet import build_phinet

    return build_phinet((1, crop_size, crop_size), num_classes, alpha=0.25, beta=1.0, t0=4,
                        num_layers=5, downsampling_layers=(5,), seed=seed)
