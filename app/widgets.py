"""Gradio components of the app's own.

Gradio writes a type stub (``widgets.pyi``, ignored by git) beside any module that defines a
component class, so they live here, apart from the rest of the UI code.
"""
from __future__ import annotations

import gradio as gr


class LenientSlider(gr.Slider):
    """A slider whose number box may hold any number while it is being typed ("1" on the way to
    "15" is below the minimum): gradio's own check raised an error toast for each such
    keystroke. Its handlers check the value themselves (σ where it is used, with a clear error;
    the crop size, zoom and divider position by clamping). A subclass, not a patched instance:
    gradio rebuilds a session's copy of a component from its class whenever an event updates
    it (``gr.skip()`` included)."""

    def get_block_name(self) -> str:
        return "slider"  # drawn by the page as gradio's own slider

    def preprocess(self, payload: float | None) -> float | None:
        return None if payload is None else gr.Number.round_to_precision(payload, self.precision)
