"""The one denoiser contract.

``Denoiser.denoise(noisy, sigma)`` takes ``noisy``: an HxWx3 float32 array on the [0, 1]
scale, NOT clipped (additive noise strays outside [0, 1]), any H, W >= 16; and ``sigma``:
the noise standard deviation on the 0-255 scale, in (0, 100]. It returns an HxWx3 float32
array clipped to [0, 1]. A denoiser that is not ready (missing weights, say) raises
``NotReadyError`` from ``denoise``; it never returns its input or noise as a result.

``Denoiser.denoise_region(noisy, sigma, box)`` takes the same input and ``box = (top, left,
height, width)`` inside it, and returns that region of the output (height x width x 3 float32,
clipped): what ``denoise`` would give there, computed from the region plus the context a
method declares (``region_margin``), or from the whole image when it declares none.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import math
import os
import threading
from abc import ABC, abstractmethod
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from .io import array_to_tensor, tensor_to_array
from .tiling import run_tiled

MIN_SIZE = 16
SIGMA_MAX = 100.0
SEED_MAX = 2**53 - 1  # noise seeds: the largest whole number a browser (a JavaScript number) holds exactly
PRECISION_ENV = "DENOISERS_PRECISION"  # "auto" (default), "fp32" or "bf16"
PRECISIONS = ("auto", "fp32", "bf16")
#: How far outside [0, 1] an output may stray before it is refused rather than clipped: an
#: output as noisy as its input at sigma 100 stays within about -2..3; one on the 0-255 scale does not.
OUTPUT_SLACK = 4.0


def check_precision_env() -> None:
    """ValueError for a ``$DENOISERS_PRECISION`` other than auto, fp32 or bf16: a command
    checks it before any work, instead of failing where a network is first built."""
    value = os.environ.get(PRECISION_ENV, "auto")
    if value not in PRECISIONS:
        raise ValueError(f"${PRECISION_ENV} must be auto, fp32 or bf16, got {value!r}")


class NotReadyError(RuntimeError):
    """The method cannot run (for example: no trained weights for this sigma)."""


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""  # why not ready, or a note such as "not trained for sigma 60; uses ..."
    # Runs, but at a sigma its training did not cover: says so ("" when inside the range). Also
    # part of ``reason``, which may say more (that weights are downloaded on first use, say).
    outside_training: str = ""


def check_sigma(sigma: float) -> float:
    """Validate sigma (0-255 scale, in (0, 100]); returns it as a float. Raises ``ValueError``."""
    try:
        sigma = float(sigma)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sigma must be a number on the 0-255 scale, got {sigma!r}") from exc
    if not (0.0 < sigma <= SIGMA_MAX) or math.isnan(sigma):
        raise ValueError(f"sigma must be in (0, {SIGMA_MAX:g}] on the 0-255 scale, got {sigma}")
    return sigma


def check_input(noisy: np.ndarray, sigma: float) -> float:
    """Validate the contract's inputs; returns sigma as a float. Raises ``ValueError``."""
    if not isinstance(noisy, np.ndarray):
        raise ValueError(f"noisy must be a numpy array, got {type(noisy).__name__}")
    if noisy.dtype != np.float32:
        raise ValueError(f"noisy must be float32 on the [0, 1] scale, got dtype {noisy.dtype}")
    if noisy.ndim != 3 or noisy.shape[2] != 3:
        raise ValueError(f"noisy must be HxWx3 (RGB), got shape {noisy.shape}")
    if noisy.shape[0] < MIN_SIZE or noisy.shape[1] < MIN_SIZE:
        raise ValueError(f"images must be at least {MIN_SIZE}x{MIN_SIZE}, got {noisy.shape[1]}x{noisy.shape[0]}")
    if not np.isfinite(noisy).all():
        raise ValueError("noisy contains NaN or infinite values")
    return check_sigma(sigma)


BOX_FORM = ("(top, left, height, width): four whole numbers, height and width at least 1, "
            "the box inside the image")


def check_box(box: object, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Validate a region ``box`` for an image of ``shape`` (H, W, ...); returns it as four ints.
    Raises ``ValueError`` naming the accepted form."""
    try:
        values = tuple(box)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"box must be {BOX_FORM}; got {box!r}") from None
    if len(values) != 4 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                                   for v in values):
        raise ValueError(f"box must be {BOX_FORM}; got {box!r}")
    top, left, height, width = (int(v) for v in values)
    image_h, image_w = shape[:2]
    if height < 1 or width < 1 or top < 0 or left < 0 or top + height > image_h or left + width > image_w:
        raise ValueError(f"box {(top, left, height, width)} is not inside the {image_w}x{image_h} image "
                         f"(width x height); box must be {BOX_FORM}")
    return top, left, height, width


def context_window(box: tuple[int, int, int, int], margin: int, align: int,
                   shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The window ``(top, left, bottom, right)`` (ends excluded) run to get ``box``: the box
    plus ``margin`` pixels each side, clamped to the image, starting at multiples of ``align``
    and at least ``MIN_SIZE`` a side (the contract's smallest input)."""
    spans = []
    for start, length, size in ((box[0], box[2], shape[0]), (box[1], box[3], shape[1])):
        low = max(start - margin, 0) // align * align
        high = min(start + length + margin, size)
        if high - low < MIN_SIZE:
            high = min(low + MIN_SIZE, size)
            low = min(low, (high - MIN_SIZE) // align * align)
        spans.append((low, high))
    (top, bottom), (left, right) = spans
    return top, left, bottom, right


def same_output(a_u8: np.ndarray, b_u8: np.ndarray, bit_exact: bool = True) -> bool:
    """Whether two 8-bit outputs of one method on one input agree: identical, or for a method
    that is not ``bit_exact``, at most one step apart in under 0.5% of the values."""
    if a_u8.shape != b_u8.shape:
        return False
    if bit_exact:
        return bool(np.array_equal(a_u8, b_u8))
    steps = np.abs(a_u8.astype(np.int16) - b_u8.astype(np.int16))
    return bool(steps.max(initial=0) <= 1 and (steps > 0).mean() < 0.005)


class Denoiser(ABC):
    """Base class: validation, clipping and readiness; subclasses implement ``_denoise``."""

    name: ClassVar[str]
    label: ClassVar[str]
    #: CPU-bound work outside torch (CBM3D): callers should run it in its own process.
    separate_process: ClassVar[bool] = False
    #: Weights trained by this project (its model cards), not a method's published ones.
    trained_here: ClassVar[bool] = False
    #: A restriction of the method's licence that a user must see beside it (the app says it).
    licence_note: ClassVar[str] = ""
    #: Two runs on one input give the same bits. False for CBM3D (multi-threaded sums): its runs
    #: may differ by one 8-bit step in a few values; ``same_output`` says what is allowed.
    bit_exact: ClassVar[bool] = True
    #: ``_denoise`` never writes into its input, so it needs no copy of it (a method of one's
    #: own gets one, so that a write cannot change what the next method is given).
    leaves_input_alone: ClassVar[bool] = False
    #: Pixels of context on each side that one output pixel depends on: ``denoise_region`` runs
    #: the region plus this much. None (the default, a method that declares none): the whole
    #: image is run and the region cut out of it, which is correct but not faster.
    region_margin: ClassVar[int | None] = None
    #: The window ``denoise_region`` runs starts at multiples of this (2 for a method on a 2x2
    #: pixel-unshuffled grid, whose output changes if the grid moves by one pixel).
    region_align: ClassVar[int] = 1

    def readiness(self, sigma: float | None = None) -> Readiness:
        """Whether ``denoise`` can run (at ``sigma``, if given), and why not. Never downloads."""
        return Readiness(True)

    def warm(self, sigma: float) -> None:
        """Load now what the first call at ``sigma`` would load (a network's weights, a compiled
        library), so that it starts at once: the app calls it at launch for every ready method.
        By default nothing; never downloads."""

    def weights_id(self, sigma: float) -> str:
        """What identifies the exact model used at ``sigma`` (a sha256 or a package version).

        Results are kept (the app's cache, the evaluation's rows) under this identity. By default
        it is the sha256 of the file that defines the class, so that editing a method of one's
        own (a plugin without weights) makes its old results count as another model's."""
        return "code sha256:" + _source_sha256(type(self))

    def input_note(self, noisy: np.ndarray) -> str:
        """What a user should know about running on this input ("" when nothing), e.g. noise of
        a kind the method was not made for. Informational: ``denoise`` still runs."""
        return ""

    def denoise(self, noisy: np.ndarray, sigma: float) -> np.ndarray:
        """See the module docstring for the contract."""
        return self._checked(noisy, sigma, self._denoise)

    def denoise_region(self, noisy: np.ndarray, sigma: float, box: tuple[int, int, int, int]) -> np.ndarray:
        """The output of ``denoise(noisy, sigma)`` in ``box = (top, left, height, width)``,
        computed from the window ``context_window`` gives (the whole image when the method
        declares no margin); height x width x 3 float32 on [0, 1]. ``ValueError`` for a bad
        input or box, ``NotReadyError`` as ``denoise``."""
        sigma = check_input(noisy, sigma)
        top, left, height, width = check_box(box, noisy.shape)
        self._require_ready(sigma)
        margin, align = self.region_context(sigma)
        if margin is None:
            window = (0, 0, *noisy.shape[:2])
        else:
            if not (isinstance(margin, (int, np.integer)) and margin >= 0
                    and isinstance(align, (int, np.integer)) and align >= 1):
                raise RuntimeError(f"{self.label}: region_context gave margin {margin!r} and align {align!r}, "
                                   "not a whole number >= 0 and one >= 1")
            window = context_window((top, left, height, width), int(margin), int(align), noisy.shape)
        box = (top, left, height, width)
        out = self._run(lambda x, s: self._denoise_box(x, s, window, box), noisy, sigma)
        return np.ascontiguousarray(self._checked_output(out, (height, width, 3)))

    def region_context(self, sigma: float) -> tuple[int | None, int]:
        """``(margin, align)`` that ``denoise_region`` uses at ``sigma``: by default the class's
        ``region_margin`` and ``region_align``; a method whose reach depends on its model (a
        network's receptive radius) says so here. Called once the method is ready."""
        return self.region_margin, self.region_align

    def _denoise_box(self, noisy: np.ndarray, sigma: float, window: tuple[int, int, int, int],
                     box: tuple[int, int, int, int]) -> np.ndarray:
        """The output in ``box`` (height x width x 3) computed from ``window = (top, left,
        bottom, right)`` of the validated whole input: by default ``_denoise_window``'s output
        cut to the box. A method that can compute the box alone from the window (a network's
        unpadded convolutions) overrides it."""
        w_top, w_left, w_bottom, w_right = window
        out = self._checked_output(self._denoise_window(noisy, sigma, window, box),
                                   (w_bottom - w_top, w_right - w_left, 3))
        top, left, height, width = box
        return out[top - w_top: top - w_top + height, left - w_left: left - w_left + width]

    def _denoise_window(self, noisy: np.ndarray, sigma: float, window: tuple[int, int, int, int],
                        box: tuple[int, int, int, int]) -> np.ndarray:
        """The output for ``window = (top, left, bottom, right)`` of the validated whole input,
        which holds ``box``: by default ``_denoise`` of that part alone. A method with statistics
        taken over the whole image (CBM3D's colour transform) overrides it to take them from
        ``noisy``."""
        top, left, bottom, right = window
        return self._denoise(noisy[top:bottom, left:right], sigma)

    def _checked(self, noisy: np.ndarray, sigma: float, run) -> np.ndarray:
        """Validate, check readiness, ``run(noisy, sigma)`` (on a copy of ``noisy`` unless
        ``leaves_input_alone``), check the output and clip it."""
        sigma = check_input(noisy, sigma)
        self._require_ready(sigma)
        return self._checked_output(self._run(run, noisy, sigma), noisy.shape)

    def _require_ready(self, sigma: float) -> None:
        status = self.readiness(sigma)
        if not status.ready:
            raise NotReadyError(f"{self.label} is not ready: {status.reason}")

    def _run(self, run, noisy: np.ndarray, sigma: float):
        """``run(noisy, sigma)`` on a copy of ``noisy`` unless ``leaves_input_alone``."""
        try:
            return run(noisy if self.leaves_input_alone else noisy.copy(), sigma)
        except SystemExit as exc:  # it would end the caller (a CLI, the app's server) without a word
            raise RuntimeError(f"{self.label} called sys.exit({exc.code!r}) instead of returning") from None

    def _checked_output(self, out: object, shape: tuple[int, ...]) -> np.ndarray:
        """``out`` checked to be a finite float array of ``shape`` near [0, 1], then clipped."""
        expected = "an HxWx3 float array on the [0, 1] scale"
        if not isinstance(out, np.ndarray):
            raise RuntimeError(f"{self.label} returned {type(out).__name__}, not {expected}")
        if out.shape != tuple(shape):
            raise RuntimeError(f"{self.label} returned shape {out.shape} for input {tuple(shape)}")
        if not np.issubdtype(out.dtype, np.floating):
            raise RuntimeError(f"{self.label} returned {out.dtype} values, not {expected}")
        if not np.isfinite(out).all():  # clipping would pass NaN on, and 8 bits would make it black
            raise RuntimeError(f"{self.label} returned NaN or infinite values for this input")
        low, high = float(out.min()), float(out.max())
        if low < -OUTPUT_SLACK or high > 1 + OUTPUT_SLACK:  # clipped, it would be scored as a result
            raise RuntimeError(f"{self.label} returned values from {low:.4g} to {high:.4g}, not {expected}"
                               + (" (on the 0-255 scale?)" if high > 1 + OUTPUT_SLACK else ""))
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    @abstractmethod
    def _denoise(self, noisy: np.ndarray, sigma: float) -> np.ndarray:
        """Denoise a validated input; the result may stray outside [0, 1] (it is clipped)."""


def model_id(denoiser: Denoiser, sigma: float) -> str:
    """``denoiser.weights_id(sigma)``, checked to be text (results are kept under it)."""
    value = denoiser.weights_id(sigma)
    if not isinstance(value, str):
        raise TypeError(f"{denoiser.label}: weights_id returned {type(value).__name__}, not a string")
    return value


@functools.cache
def _source_sha256(cls: type) -> str:
    try:
        return hashlib.sha256(Path(inspect.getfile(cls)).read_bytes()).hexdigest()
    except (TypeError, OSError):  # defined where no file holds it (an interactive session)
        return "unknown"


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def is_grey(image: np.ndarray) -> bool:
    """True when the three channels are equal everywhere (a grey photo, noise and all)."""
    return bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())


#: ``input_note`` of the colour networks on a grey noisy image (measured on a 256x256 crop of
#: kodim23 in grey at sigma 25: DnCNN 20.3 -> 20.5 dB, FFDNet 23.7, IDResNet 22.8, CBM3D 32.5).
GREY_NOISE_NOTE = ("a grey image: its noise is the same in all three channels, unlike the independent "
                   "colour noise the networks were trained on, so they remove little of it (CBM3D runs "
                   "as grey BM3D)")


class TorchDenoiser(Denoiser):
    """A denoiser backed by a torch module: device choice, precision, tiling, model cache.

    Subclasses implement ``_model_key(sigma)``, ``_build(key)`` (load weights, return the
    module) and ``_forward(model, x, sigma)`` ([1, 3, h, w] on [0, 1] -> same).
    """

    #: bf16 autocast on the CPU changes PSNR by at most 0.02 dB on Kodak24 (measured by
    #: ``scripts/benchmark_denoisers.py``); only then is it used by default.
    cpu_bf16: ClassVar[bool] = False
    #: Images with more pixels than this are run in tiles.
    tile_above_pixels: ClassVar[int] = 1536 * 1536
    #: Tiles start at multiples of this (2 for a pixel-unshuffled grid).
    tile_align: ClassVar[int] = 1
    #: The network gets a tensor copy (``array_to_tensor``); a subclass whose own ``_denoise``
    #: writes into its input must set this back to False.
    leaves_input_alone: ClassVar[bool] = True

    def input_note(self, noisy: np.ndarray) -> str:
        return GREY_NOISE_NOTE if noisy.ndim == 3 and noisy.shape[-1] == 3 and is_grey(noisy) else ""

    def __init__(self, device: str | torch.device | None = None, precision: str | None = None,
                 tile: int = 512) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.precision = precision or os.environ.get(PRECISION_ENV, "auto")
        if self.precision not in PRECISIONS:
            where = "precision" if precision else f"${PRECISION_ENV}"
            raise ValueError(f"{where} must be auto, fp32 or bf16, got {self.precision!r}")
        self.tile = tile
        self._models: dict[object, torch.nn.Module] = {}
        self._lock = threading.Lock()

    @property
    def uses_bf16(self) -> bool:
        if self.precision == "auto":
            return self.device.type == "cpu" and self.cpu_bf16
        return self.precision == "bf16"

    @abstractmethod
    def _model_key(self, sigma: float) -> object: ...

    @abstractmethod
    def _build(self, key: object) -> torch.nn.Module: ...

    @abstractmethod
    def _forward(self, model: torch.nn.Module, x: torch.Tensor, sigma: float) -> torch.Tensor: ...

    def warm(self, sigma: float) -> None:
        # The module, and one forward on a 32x32 input: the first forward in a process sets up
        # the CPU kernels (bf16 autocast's most: IDResNet's first 96x96 region 0.81 s, 0.45 s after).
        self._denoise(np.zeros((32, 32, 3), np.float32), sigma)

    def model(self, sigma: float) -> torch.nn.Module:
        """The module used at ``sigma``, built and loaded once (thread-safe)."""
        key = self._model_key(sigma)
        with self._lock:
            if key not in self._models:
                module = self._build(key).float().eval().to(self.device)
                if self.device.type == "cpu":
                    module = module.to(memory_format=torch.channels_last)
                self._models[key] = module
            return self._models[key]

    def margin(self, model: torch.nn.Module) -> int:
        """Context each side of a tile or region: the receptive radius, rounded up to 8."""
        radius = int(getattr(model, "receptive_radius", 32))
        return int(math.ceil(radius / 8) * 8)

    def region_context(self, sigma: float) -> tuple[int | None, int]:
        # The same margin and alignment as the tiles: the region equals the whole run there.
        return self.margin(self.model(sigma)), self.tile_align

    def _tensor(self, noisy: np.ndarray) -> torch.Tensor:
        x = array_to_tensor(noisy, self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cpu" else x

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.uses_bf16 else nullcontext()

    def _denoise(self, noisy: np.ndarray, sigma: float, tile: int | None = None) -> np.ndarray:
        model = self.model(sigma)
        x = self._tensor(noisy)
        fn = lambda t: self._forward(model, t, sigma).float()  # noqa: E731
        with torch.inference_mode(), self._autocast():
            h, w = noisy.shape[:2]
            if tile is None and h * w <= self.tile_above_pixels:
                y = fn(x)
            else:
                size = tile or self.tile
                y = run_tiled(fn, x, tile=size, overlap=min(32, size // 4) // 2 * 2,
                              margin=self.margin(model), align=self.tile_align)
        return tensor_to_array(y)

    def denoise_tiled(self, noisy: np.ndarray, sigma: float, tile: int) -> np.ndarray:
        """``denoise`` forced through the tiling path with ``tile``-pixel tiles."""
        return self._checked(noisy, sigma, lambda x, s: self._denoise(x, s, tile=tile))
