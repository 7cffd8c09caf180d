"""Training IDResNet (phase 1, MSE) and IDGAN (phase 2, detail loss) from the 2019 paper.

Run as ``python -m train mse|gan|bench ...``; see ``docs/training.md``. This package imports
only the torch-side modules of ``denoisers`` (nets, io, metrics, weights, fetch, datasets), so
it runs on a machine without gradio or bm3d.
"""
