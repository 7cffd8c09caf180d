"""Perceptual distances in plain torch: LPIPS v0.1 (AlexNet or VGG16 trunk) and DISTS.

LPIPS (Zhang et al., CVPR 2018): the images, scaled to [-1, 1], are shifted and scaled per
channel, go through an ImageNet feature trunk, and at five taps the features are made unit
length over the channels; their squared difference is weighted by a learned 1x1 head without
bias, averaged over space, and the five are summed. DISTS (Ding et al., TPAMI 2020): images on
[0, 1], ImageNet mean/std, VGG16 with an L2 pooling (a 3x3 Hann window, stride 2) in place of
max pooling; at the input and five taps the per-channel means ("texture") and (co)variances
("structure") of the two images are compared, weighted by the learned alpha and beta.

Weights come from the manifest (``lpips_alex``, ``lpips_vgg``, ``dists``). The LPIPS files are
pickles of numpy arrays; they are read by an unpickler that can only rebuild numpy arrays
(``read_array_pickle``). Each model is built once per process, under a lock, and shared;
inference runs under ``torch.inference_mode``. Callers pass checked uint8 H x W x 3 arrays
(``denoisers.metrics.lpips`` / ``dists`` check them).
"""
from __future__ import annotations

import pickle
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import weights

NETS = {"alex": "lpips_alex", "vgg": "lpips_vgg"}
DISTS_KEY = "dists"
#: The smallest side the AlexNet trunk takes (its fifth tap is empty below 31 pixels).
MIN_SIDE = 32

LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (in, out, kernel, stride, padding) of each conv, in file order (Conv_0, Conv_1, ...).
ALEX_CONVS = ((3, 64, 11, 4, 2), (64, 192, 5, 1, 2), (192, 384, 3, 1, 1), (384, 256, 3, 1, 1),
              (256, 256, 3, 1, 1))
VGG_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))  # convs per block, channels


def _vgg_convs() -> tuple[tuple[int, int, int, int, int], ...]:
    convs, c_in = [], 3
    for n, channels in VGG_BLOCKS:
        for _ in range(n):
            convs.append((c_in, channels, 3, 1, 1))
            c_in = channels
    return tuple(convs)


VGG_CONVS = _vgg_convs()
TRUNKS = {"alex": ("AlexNet_0", ALEX_CONVS), "vgg": ("VGG16_0", VGG_CONVS)}
TAP_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)  # the input, then the five VGG16 taps


class UnsafePickleError(weights.WeightsError):
    """A weights pickle asked for something other than numpy's array-rebuilding functions."""


def _allowed_globals() -> dict[tuple[str, str], object]:
    """numpy's array-rebuilding functions, under both module names a pickle may give them."""
    import codecs

    try:  # numpy 2 keeps these in numpy._core; pickles written under numpy 1 name numpy.core
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1
        from numpy.core import multiarray, numeric
    allowed = {("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray,
               ("_codecs", "encode"): codecs.encode}  # protocol 2 carries array bytes through it
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar  # numpy scalars
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5
    return allowed


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, numbers, strings and numpy arrays; refuses every other global."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        found = self._allowed.get((module, name))
        if found is None:
            raise UnsafePickleError(f"refused to load {module}.{name}: a weights pickle may only "
                                    "rebuild numpy arrays (numpy.ndarray, numpy.dtype, _reconstruct, _frombuffer, scalar)")
        return found


def read_array_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """The float arrays of a pickled nested dict, flattened to ``"a/b/c"`` keys."""
    try:
        with open(path, "rb") as f:
            tree = _ArrayUnpickler(f).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from exc
    except Exception as exc:  # truncated or not a pickle: several exception types
        raise weights.WeightsError(f"cannot read weights file {path}: {exc}") from exc
    flat: dict[str, np.ndarray] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}/{key}" if prefix else str(key))
        elif isinstance(node, np.ndarray) and node.dtype.kind == "f":
            flat[prefix] = node
        else:
            raise weights.WeightsError(f"{path}: {prefix or 'the top level'} holds "
                                       f"{type(node).__name__}, not a float array")

    walk(tree, "")
    return flat


def _tensor(arrays: dict[str, np.ndarray], key: str, shape: tuple[int, ...], source: str) -> torch.Tensor:
    array = arrays.get(key)
    if array is None:
        raise weights.WeightsError(f"{source}: no array {key}")
    if array.ndim == 4:  # flax kernels are (kH, kW, in, out); torch wants (out, in, kH, kW)
        array = array.transpose(3, 2, 0, 1)
    if tuple(array.shape) != shape:
        raise weights.WeightsError(f"{source}: {key} has shape {tuple(array.shape)}, expected {shape}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


class Trunk:
    """An AlexNet or VGG16 feature stack (torchvision's layout) returning the five LPIPS taps."""

    def __init__(self, net: str, arrays: dict[str, np.ndarray], source: str) -> None:
        prefix, convs = TRUNKS[net]
        self.net, self.layers = net, []
        for i, (c_in, c_out, k, stride, pad) in enumerate(convs):
            w = _tensor(arrays, f"{prefix}/Conv_{i}/kernel", (c_out, c_in, k, k), source)
            b = _tensor(arrays, f"{prefix}/Conv_{i}/bias", (c_out,), source)
            self.layers.append((w, b, stride, pad))

    def _conv(self, i: int, h: torch.Tensor) -> torch.Tensor:
        w, b, stride, pad = self.layers[i]
        return F.relu(F.conv2d(h, w, b, stride=stride, padding=pad))

    def __call__(self, x: torch.Tensor, pool: str = "max") -> list[torch.Tensor]:
        x = x.contiguous(memory_format=torch.channels_last)  # about 1.7x faster convs on the CPU
        if self.net == "alex":  # taps relu1 .. relu5; max pools (3, stride 2) after the first two
            taps, h = [], x
            for i in range(5):
                if i in (1, 2):
                    h = F.max_pool2d(h, 3, 2)
                h = self._conv(i, h)
                taps.append(h)
            return taps
        taps, h, i = [], x, 0  # VGG16: taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
        for block, (n, _) in enumerate(VGG_BLOCKS):
            if block:
                h = F.max_pool2d(h, 2, 2) if pool == "max" else l2_pool(h)
            for _ in range(n):
                h, i = self._conv(i, h), i + 1
            taps.append(h)
        return taps


def _hann_filter() -> torch.Tensor:
    """DISTS's pooling window: the inner 3 taps of a 5-point Hann window, outer product, sum 1."""
    a = np.hanning(5)[1:-1]
    g = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
    return (g / g.sum())[None, None]


_HANN = _hann_filter()


def l2_pool(h: torch.Tensor) -> torch.Tensor:
    """DISTS's L2 pooling: sqrt of the Hann-weighted mean of squares, stride 2, padding 1."""
    window = _HANN.expand(h.shape[1], 1, 3, 3)
    return (F.conv2d(h * h, window, stride=2, padding=1, groups=h.shape[1]) + 1e-12).sqrt()


_lock = threading.RLock()  # reentrant: building DISTS builds (or reuses) the VGG16 trunk
_cache: dict[str, object] = {}


def _cached(name: str, build):
    model = _cache.get(name)
    if model is None:
        with _lock:
            model = _cache.get(name)
            if model is None:
                model = build()
                _cache[name] = model
    return model


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _load_arrays(key: str) -> tuple[dict[str, np.ndarray], str]:
    path = weights.weights_path(weights.manifest()[key])
    return read_array_pickle(path), str(path)


def _lpips_model(net: str) -> tuple[Trunk, list[torch.Tensor]]:
    def build():
        arrays, source = _load_arrays(NETS[net])
        trunk = Trunk(net, arrays, source)
        heads = [_tensor(arrays, f"NetLinLayer_{i}/Conv_0/kernel", (1, ch, 1, 1), source)
                 for i, ch in enumerate(TAP_CHANNELS[net])]
        return trunk, heads

    return _cached(f"lpips:{net}", build)


def _dists_model() -> tuple[Trunk, torch.Tensor, torch.Tensor]:
    def build():
        trunk, _ = _lpips_model("vgg")  # DISTS uses the same ImageNet VGG16
        state = weights.load_state_dict(weights.manifest()[DISTS_KEY])
        shape = (1, sum(DISTS_CHANNELS), 1, 1)
        for name in ("alpha", "beta"):
            if name not in state or tuple(state[name].shape) != shape:
                raise weights.WeightsError(f"DISTS weights need {name} of shape {shape}")
        return trunk, state["alpha"].float(), state["beta"].float()

    return _cached("dists", build)


def _to_tensor(image_u8: np.ndarray) -> torch.Tensor:
    """1 x 3 x H x W float32 on [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image_u8.transpose(2, 0, 1))).float()[None] / 255.0


def lpips(reference_u8: np.ndarray, image_u8: np.ndarray, net: str = "alex") -> float:
    """LPIPS v0.1 distance of two checked uint8 H x W x 3 arrays (0 = identical)."""
    trunk, heads = _lpips_model(net)
    shift = torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1)
    scale = torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1)
    with torch.inference_mode():
        x = torch.cat([_to_tensor(reference_u8), _to_tensor(image_u8)]) * 2.0 - 1.0
        total = torch.zeros(())
        for tap, head in zip(trunk((x - shift) / scale), heads):
            tap = tap / (tap.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            diff = (tap[:1] - tap[1:]) ** 2
            total = total + F.conv2d(diff, head).mean()
    return float(total)


def _dists_features(trunk: Trunk, x: torch.Tensor) -> list[torch.Tensor]:
    """DISTS's six feature maps of a batch on [0, 1]: the input, then the five VGG16 taps."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return [x] + trunk((x - mean) / std, pool="l2")


def _dists_score(fx: list[torch.Tensor], fy: list[torch.Tensor], alpha: torch.Tensor, beta: torch.Tensor) -> float:
    """DISTS from the feature maps of the reference (``fx``) and the image (``fy``), 1 x C x H x W each."""
    c1 = c2 = 1e-6
    alpha, beta = alpha.double(), beta.double()  # in double the weights sum to 1 (to 1e-16)
    w_sum = alpha.sum() + beta.sum()
    alphas = torch.split(alpha / w_sum, DISTS_CHANNELS, dim=1)
    betas = torch.split(beta / w_sum, DISTS_CHANNELS, dim=1)
    texture = structure = torch.zeros((), dtype=torch.float64)
    for x, y, a, b in zip(fx, fy, alphas, betas):
        x, y = x.double(), y.double()  # the moments in double: identical images give exactly 1 below
        mx, my = x.mean([2, 3], keepdim=True), y.mean([2, 3], keepdim=True)
        var_x = ((x - mx) ** 2).mean([2, 3], keepdim=True)
        var_y = ((y - my) ** 2).mean([2, 3], keepdim=True)
        cov = ((x - mx) * (y - my)).mean([2, 3], keepdim=True)
        s1 = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
        s2 = (2 * cov + c2) / (var_x + var_y + c2)
        texture = texture + (a * s1).sum()
        structure = structure + (b * s2).sum()
    return float(1.0 - (texture + structure))


def dists(reference_u8: np.ndarray, image_u8: np.ndarray) -> float:
    """DISTS distance of two checked uint8 H x W x 3 arrays (0 = identical)."""
    trunk, alpha, beta = _dists_model()
    with torch.inference_mode():
        feats = _dists_features(trunk, torch.cat([_to_tensor(reference_u8), _to_tensor(image_u8)]))
        return _dists_score([f[:1] for f in feats], [f[1:] for f in feats], alpha, beta)


class DistsReference:
    """DISTS of images against one checked reference, whose VGG16 features are computed once:
    each image scored then costs one pass of the network instead of two. It holds the
    reference's feature maps (about 190 MB for 768 x 512) while it lives."""

    def __init__(self, reference_u8: np.ndarray) -> None:
        self.shape = reference_u8.shape
        self._trunk, self._alpha, self._beta = _dists_model()
        with torch.inference_mode():
            self._features = _dists_features(self._trunk, _to_tensor(reference_u8))

    def __call__(self, image_u8: np.ndarray) -> float:
        with torch.inference_mode():
            return _dists_score(self._features, _dists_features(self._trunk, _to_tensor(image_u8)),
                                self._alpha, self._beta)
