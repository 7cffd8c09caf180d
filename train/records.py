"""What a run writes as it goes: ``metrics.jsonl``, ``log.txt`` and the terminal."""
from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

from denoisers.files import write_text


class Recorder:
    """metrics.jsonl, log.txt and the terminal (a tqdm bar on a terminal, plain lines otherwise)."""

    def __init__(self, out: Path, enabled: bool, total: int, initial: int, bar: bool | None = None) -> None:
        self.out, self.enabled = out, enabled
        self.bar = None
        if enabled and (sys.stderr.isatty() if bar is None else bar):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, dynamic_ncols=True, leave=True)

    def metrics(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def log(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"{_dt.datetime.now().strftime('%H:%M:%S')} {message}"
        with open(self.out / "log.txt", "a") as f:
            f.write(line + "\n")
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def progress(self, step: int, total: int, postfix: str) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = step
            self.bar.set_postfix_str(postfix, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records after ``step`` (written after the checkpoint a resume starts from), and a
    last line cut short by a killed run; the file is replaced in one rename."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # half a line: the process died while writing it
            continue
        if record.get("step", 0) <= step:
            kept.append(line)
    write_text(path, "".join(line + "\n" for line in kept))
