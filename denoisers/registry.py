"""The explicit registry of denoiser classes, in display order; and plugins, modules of the
user's own denoisers (``--plugin`` of the CLIs and the app), which register theirs the same way."""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Callable

from .base import Denoiser, Readiness, model_id

_REGISTRY: dict[str, type[Denoiser]] = {}
# Families of methods named ``family@argument`` (the dial ``idgan@0.3``): a factory building one
# from its argument (ValueError naming the accepted form). Not in ``names()``.
_FAMILIES: dict[str, Callable[..., Denoiser]] = {}
_PLUGINS: list[str] = []  # loaded in this process, in order: worker processes load them too


def register(cls: type[Denoiser]) -> type[Denoiser]:
    """Class decorator: add ``cls`` under ``cls.name`` (registration order = display order)."""
    if cls.name in _REGISTRY:
        raise ValueError(f"denoiser {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def register_family(family: str, factory: Callable[..., Denoiser]) -> None:
    """Methods ``family@argument``: ``factory(argument, **kwargs)`` builds one."""
    _FAMILIES[family] = factory


def canonical(name: str) -> str:
    """A method's name as results and the cache keep it (``idgan@0.30`` is ``idgan@0.3``);
    ValueError for an unknown one."""
    if name in _REGISTRY:
        return name
    family, at, argument = name.partition("@")
    if at and family in _FAMILIES:
        return _FAMILIES[family](argument).name
    raise ValueError(f"unknown denoiser {name!r}; known: {', '.join(_REGISTRY)}"
                     + "".join(f", {f}@..." for f in _FAMILIES))


def names() -> list[str]:
    """Every registered method, in display order."""
    return list(_REGISTRY)


def label(name: str) -> str:
    """The display name of method ``name`` (``CBM3D`` for ``cbm3d``), or ``name`` if unknown."""
    cls = _REGISTRY.get(name)
    if cls is not None:
        return cls.label
    family, at, argument = name.partition("@")
    if at and family in _FAMILIES:
        try:
            return _FAMILIES[family](argument).label
        except ValueError:
            pass
    return name


def parse_methods(text: str) -> list[str]:
    """Method names from a CLI's ``--methods`` (commas and/or spaces), once each, in the order
    given; ValueError naming any unknown one, the known ones and how to add one's own."""
    given = list(dict.fromkeys(m for m in text.replace(",", " ").split()))
    if not given:
        raise ValueError(f"name at least one method of {', '.join(_REGISTRY)}")
    methods, unknown = [], []
    for m in given:
        family, at, _ = m.partition("@")
        if at and family in _FAMILIES:
            methods.append(canonical(m))  # a bad argument: its own ValueError, naming the form
        elif m in _REGISTRY:
            methods.append(m)
        else:
            unknown.append(m)
    if unknown:
        raise ValueError(f"unknown methods: {', '.join(unknown)} (known: {', '.join(_REGISTRY)}"
                         + "".join(f", {f}@..." for f in _FAMILIES) + "; a method of your own is added with --plugin)")
    return list(dict.fromkeys(methods))


def get(name: str, **kwargs) -> Denoiser:
    """A new denoiser ``name``. Building it touches neither the network nor the weights."""
    cls = _REGISTRY.get(name)
    if cls is not None:
        return cls(**kwargs)
    family, at, argument = name.partition("@")
    if at and family in _FAMILIES:
        return _FAMILIES[family](argument, **kwargs)
    raise ValueError(f"unknown denoiser {name!r}; known: {', '.join(_REGISTRY)}"
                     + "".join(f", {f}@..." for f in _FAMILIES))


def load_plugin(spec: str) -> list[str]:
    """Import ``spec``, a module name on the Python path or a ``.py`` file, whose classes
    ``@register`` themselves; returns the names it added (none when it was loaded before).
    Raises ``ValueError`` saying what went wrong."""
    path = Path(spec)
    from_file = spec.endswith(".py") or path.is_file()
    key = str(path.resolve()) if from_file else spec
    if key in _PLUGINS:
        return []
    before = set(_REGISTRY)
    try:
        if from_file:
            if not path.is_file():
                raise ValueError(f"plugin {spec}: no such file")
            module_name = f"denoisers_plugin_{len(_PLUGINS)}_{path.stem}"
            module_spec = importlib.util.spec_from_file_location(module_name, path.resolve())
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            module_spec.loader.exec_module(module)
        else:
            importlib.import_module(spec)
        for name in [n for n in _REGISTRY if n not in before]:
            _check_plugin_class(spec, _REGISTRY[name])
    except (Exception, SystemExit) as exc:  # the user's code (a name clash included): say which plugin, and how
        for name in [n for n in _REGISTRY if n not in before]:  # nothing half-loaded stays behind
            del _REGISTRY[name]
        if isinstance(exc, ValueError) and str(exc).startswith(f"plugin {spec}:"):
            raise
        raise ValueError(f"plugin {spec} could not be imported: {type(exc).__name__}: {exc}") from exc
    added = [n for n in _REGISTRY if n not in before]
    if not added:
        raise ValueError(f"plugin {spec} registered no denoiser: decorate its classes with "
                         "denoisers.registry.register")
    _PLUGINS.append(key)
    return added


_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def _check_plugin_class(spec: str, cls: type[Denoiser]) -> None:
    """A plugin's method must have a name that can be typed in ``--methods`` and used as a
    folder name, a label of its own, and must build and say whether it is ready without an
    error: found here, at start-up, rather than halfway through a run."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"plugin {spec}: method name {name!r} must be lower-case letters, digits, '_' "
                         "or '-' (it names output folders and is typed in --methods)")
    label = getattr(cls, "label", None)
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"plugin {spec}: method {name!r} needs a label (its display name)")
    taken = {_REGISTRY[n].label: n for n in _REGISTRY if n != name}
    if label in taken:
        raise ValueError(f"plugin {spec}: method {name!r} has the label {label!r} of {taken[label]!r}")
    try:
        status = cls().readiness()
    except (Exception, SystemExit) as exc:
        raise ValueError(f"plugin {spec}: method {name!r} failed to build or to say whether it is ready: "
                         f"{type(exc).__name__}: {exc}") from exc
    if not hasattr(status, "ready"):
        raise ValueError(f"plugin {spec}: {name}.readiness() must return a denoisers.base.Readiness")


def load_plugins(specs: list[str]) -> None:
    for spec in specs:
        load_plugin(spec)


def plugins() -> list[str]:
    """The plugins loaded in this process (module names, or resolved file paths)."""
    return list(_PLUGINS)


class MethodError(RuntimeError):
    """A method's own code failed when asked whether it is ready or which model it is;
    ``str()`` names the method, ``reason`` says what failed and how."""

    def __init__(self, method: str, where: str, reason: str) -> None:
        super().__init__(f"{method} {where}{reason}")
        self.reason = reason


def status_and_model(denoiser: Denoiser, sigma: float | None, with_model: bool = True) -> tuple[Readiness, str]:
    """``denoiser``'s readiness at ``sigma`` and, when ready (and ``with_model``), its model id
    (``""`` otherwise). A method of one's own may fail here: that is a ``MethodError`` naming it
    (``SystemExit`` included); missing weights (``WeightsError``, ``FetchError``) pass through."""
    from .fetch import FetchError  # here, not at the top: weights imports torch
    from .weights import WeightsError
    try:
        status = denoiser.readiness(sigma)
        return status, (model_id(denoiser, sigma) if status.ready and with_model else "")
    except (WeightsError, FetchError):
        raise
    except (Exception, SystemExit) as exc:
        at = f"at sigma {sigma:g} " if sigma is not None else ""
        what = "whether it is ready or which model it is" if with_model else "whether it is ready"
        raise MethodError(denoiser.name, at, f"could not say {what}: {type(exc).__name__}: {exc}") from exc


def add_plugin_argument(parser) -> None:
    """The ``--plugin`` option every command line shares (load with ``load_plugins``)."""
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                        help="a module (or .py file) of your own denoisers, registered with "
                             "denoisers.registry.register (repeatable)")
