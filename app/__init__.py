"""The comparison app: every denoiser side by side on Kodak24 or an upload.

Pure handlers live in small modules (``convert``, ``crops``, ``cache``, ``state``,
``errormap``, ``engine``, ``views``, ``events``, ``export``, ``benchmark``) and are tested without
gradio; ``layout`` places the components and ``ui`` only wires them to the events. Start it with ``python -m app``.
"""
