"""Entry point for a Hugging Face Space (``app_file: space.py`` in the README front matter).

Spaces runs ``python space.py`` with GRADIO_SERVER_NAME/GRADIO_SERVER_PORT set; this is the
same app as ``python -m app``. Kodak24 and the weights are downloaded (sha256-checked) on
first use; a GPU is used where the Space has one.
"""
from app.__main__ import main

if __name__ == "__main__":
    main([])
