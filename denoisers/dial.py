"""The fidelity <-> detail dial: ``idgan@A`` is the generator whose weights are
(1 - A) * IDResNet + A * IDGAN (network interpolation), A from 0 (IDResNet) to 1 (IDGAN).

Blending two networks' weights only makes sense when one was fine-tuned from the other: the
manifest records, for each IDGAN file, the sha256 of the IDResNet it started from
(``init_sha256``); a dial over an IDGAN whose start is not the bundled IDResNet is not ready,
and says why, instead of blending unrelated networks.

    >>> d = denoisers.get("idgan@0.3")
    >>> d.name, d.label
    ('idgan@0.3', 'IDGAN@0.3')
"""
from __future__ import annotations

import math
import re

import torch

from . import weights
from .base import Readiness
from .idresnet import IDGAN, IDResNet
from .nets.idresnet import IDResNetGenerator
from .registry import register_family
from .weights import WeightsEntry, WeightsError

FAMILY = "idgan"
FORM = "idgan@A with A a number from 0 to 1 (idgan@0 is IDResNet, idgan@1 is IDGAN), e.g. idgan@0.3"
_NUMBER = re.compile(r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")
DECIMALS = 6  # A is kept to 6 decimals: idgan@0.30000001 is idgan@0.3, idgan@0.30001 is not


def parse_alpha(text: str) -> float:
    """A from the part after ``idgan@``; ValueError naming the accepted form."""
    if not _NUMBER.fullmatch(text.strip()):
        raise ValueError(f"{FAMILY}@{text}: the dial is written {FORM}")
    alpha = float(text)
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"{FAMILY}@{text}: A must be from 0 to 1; the dial is written {FORM}")
    return round(alpha, DECIMALS)


def alpha_text(alpha: float) -> str:
    return f"{round(alpha, DECIMALS):g}"


def dial_name(alpha: float) -> str:
    return f"{FAMILY}@{alpha_text(alpha)}"


class IDGANDial(IDGAN):
    """IDGAN blended with the IDResNet it was fine-tuned from, at weight ``alpha``."""

    # fp32 on the CPU, as IDGAN (whose end of the dial loses 0.028 dB in bf16).
    cpu_bf16 = False

    def __init__(self, alpha: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.alpha = round(float(alpha), DECIMALS)
        self.name = dial_name(self.alpha)
        self.label = f"IDGAN@{alpha_text(self.alpha)}"

    def start_of(self, gan: WeightsEntry) -> WeightsEntry | None:
        """The IDResNet entry ``gan`` was fine-tuned from, if it is one of ours."""
        if not gan.init_sha256:
            return None
        return next((e for e in weights.entries_for(IDResNet.method) if e.sha256 == gan.init_sha256), None)

    def readiness(self, sigma: float | None = None) -> Readiness:
        status = super().readiness(sigma)
        if not status.ready:
            return status
        for gan in self._entries() if sigma is None else [self.nearest(sigma)]:
            start = self.start_of(gan)
            if start is None:
                said = f"IDResNet {gan.init_sha256[:12]}" if gan.init_sha256 else "no IDResNet"
                return Readiness(False, f"the IDGAN weights ({gan.file}) record {said} as their start, not "
                                        "the IDResNet here: only a matched pair can be blended")
            if not weights.is_available_locally(start):
                return Readiness(False, "the IDResNet the IDGAN started from is not here")
        return status

    def weights_id(self, sigma: float) -> str:
        gan = self.nearest(sigma)
        start = self.start_of(gan)
        return f"{start.sha256 if start else 'unmatched'}+{gan.sha256}@{alpha_text(self.alpha)}"

    def _model_key(self, sigma: float) -> str:
        return self.nearest(sigma).sha256

    def _build(self, key: str) -> torch.nn.Module:
        gan = next(e for e in self._entries() if e.sha256 == key)
        start = self.start_of(gan)
        if start is None:
            raise WeightsError(f"{self.label}: {gan.file} was not fine-tuned from an IDResNet here")
        if dict(start.arch) != dict(gan.arch):
            raise WeightsError(f"{self.label}: {start.file} and {gan.file} have other architectures")
        ends = weights.load_state_dict(start), weights.load_state_dict(gan)
        if ends[0].keys() != ends[1].keys():
            raise WeightsError(f"{self.label}: {start.file} and {gan.file} hold other tensors")
        model = IDResNetGenerator(**gan.arch)
        model.load_state_dict(blend(ends[0], ends[1], self.alpha))
        return model


def blend(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) * a + alpha * b for floating tensors (in float64, then float32); others
    (counters) from ``b``."""
    out = {}
    for key, ta in a.items():
        tb = b[key]
        if ta.is_floating_point():
            out[key] = ((1.0 - alpha) * ta.double() + alpha * tb.double()).float()
        else:
            out[key] = tb
    return out


def make(argument: str, **kwargs) -> IDGANDial:
    return IDGANDial(parse_alpha(argument), **kwargs)


register_family(FAMILY, make)
