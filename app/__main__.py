"""Start the comparison app: python -m app, or ./dev app from anywhere."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:  # 0 would queue every comparison for ever
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    from denoisers.registry import add_plugin_argument

    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to serve on (default: $GRADIO_SERVER_NAME, else 127.0.0.1; "
                             "0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                        help="port (default: $GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument("--results", type=Path, default=None,
                        help="folder holding <set>/results.csv for the Benchmark tab (default: docs/results)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="result cache folder (default: <DENOISERS_CACHE or ~/.cache/denoiser-compare>/results)")
    parser.add_argument("--heavy-limit", type=_at_least_one, default=2,
                        help="comparisons running at once (UI + API), at least 1")
    parser.add_argument("--max-upload-mb", type=_at_least_one, default=None, metavar="MB",
                        help="refuse uploads larger than this many megabytes (default: 200)")
    parser.add_argument("--max-sessions", type=_at_least_one, default=None, metavar="N",
                        help="visitors' views kept in memory, the least recently used dropped beyond it "
                             "(default: 300; about 10 MB each for Kodak24, up to 100 MB for a 4 MP upload)")
    add_plugin_argument(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from denoisers.base import check_precision_env
    from denoisers.registry import load_plugins

    try:
        check_precision_env()
        load_plugins(args.plugin)
    except ValueError as exc:
        parser.error(str(exc))

    from .convert import MAX_UPLOAD_MB
    from .server import MAX_SESSIONS, create, launch_kwargs

    upload_mb = args.max_upload_mb or MAX_UPLOAD_MB

    # SIGTERM (a service manager, a Space restarting) must still stop the worker processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    demo, engine, exports = create(results_root=args.results, cache_dir=args.cache_dir, heavy_limit=args.heavy_limit,
                                   max_upload_mb=upload_mb)
    try:
        demo.launch(server_name=args.host, server_port=args.port,
                    **launch_kwargs(upload_mb, args.max_sessions or MAX_SESSIONS))
    finally:
        engine.close()
        exports.close()


if __name__ == "__main__":
    main()
