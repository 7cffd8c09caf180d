"""The comparison app: every denoiser side by side on Kodak24 or an upload.

Pure handlers live in small modules (``convert``, ``crops``, ``cache``, ``state``,
``errormap``, ``engine``, ``handlers``, ``export``, ``benchmark``) and are tested without
gradio; ``ui`` only wires gradio components to them. Start it with ``python -m app``.
"""
