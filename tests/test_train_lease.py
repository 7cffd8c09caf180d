"""The lease runbook dry-run on the CPU with the tiny preset: stage, device, import, log.

The end-to-end test copies the real training set and VGG19 file, so it needs the data and
weights mirrors (``DENOISERS_DATA_MIRROR``, ``DENOISERS_WEIGHTS_MIRROR``) and is skipped
without them; the limit checks need nothing.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from denoisers.fetch import sha256_of
from train import lease, leaselog, modelcard
from train.lease import importing
from train.config import TINY
from train.lease import LeaseError

pytestmark = pytest.mark.timeout(600)  # a hang guard, not a speed check
MIRRORS = bool(os.environ.get("DENOISERS_DATA_MIRROR") and os.environ.get("DENOISERS_WEIGHTS_MIRROR"))


def test_plans_are_parsed_and_checked():
    assert lease.parse_plan("mse:5.5,gan:2") == [lease.PhasePlan("mse", 5.5), lease.PhasePlan("gan", 2.0)]
    assert lease.parse_plan("auto:2.5") == [lease.PhasePlan("auto", 2.5)]
    for bad in ("gan:1,mse:1", "mse", "adv:3", "mse:1,mse:2", "auto:1,gan:1", "mse:1,auto:1", "auto:0"):
        with pytest.raises(LeaseError):
            lease.parse_plan(bad)


def test_an_auto_plan_trains_mse_until_idresnet_passes_dncnn_then_gan(tmp_path):
    results = tmp_path / "results.csv"
    rows = [("a.png", 25, 32.0), ("b.png", 25, 31.0), ("a.png", 50, 29.0), ("b.png", 50, 28.0), ("c.png", 25, 20.0)]
    results.write_text("image,method,sigma,seed,psnr,ssim,weights\n" + "".join(
        f"{i},dncnn,{s},0,{v},0.9,w\n{i},ffdnet,{s},0,{v + 5},0.9,w\n" for i, s, v in rows))
    run = tmp_path / "job1" / "mse"
    run.mkdir(parents=True)

    def evaluated(s25: float, s50: float) -> str:
        (run / "metrics.jsonl").write_text(
            json.dumps({"event": "eval", "step": 0, "psnr_s25": 10.0, "psnr_s50": 9.0, "images": ["a.png", "b.png"]})
            + "\n" + json.dumps({"event": "train", "step": 9}) + "\n"
            + json.dumps({"event": "eval", "step": 9, "psnr_s25": s25, "psnr_s50": s50, "images": ["a.png", "b.png"]})
            + "\n")
        return lease.choose_phase(str(run), results)

    # DnCNN on a.png and b.png: 31.5 at sigma 25, 28.5 at 50 (c.png and FFDNet do not count).
    phase, why = evaluated(31.6, 28.4)
    assert phase == "mse" and "sigma 50: 28.40 < 28.50" in why and "sigma 25" not in why
    assert evaluated(31.5, 28.5)[0] == "gan"
    with pytest.raises(LeaseError, match="run folder"):
        lease.choose_phase(str(tmp_path / "idresnet.pt"), results)
    (run / "metrics.jsonl").write_text(json.dumps({"event": "eval", "step": 9, "psnr_s35": 30.0,
                                                   "images": ["a.png", "b.png"]}) + "\n")
    with pytest.raises(LeaseError, match="lacks dncnn at sigma 35"):
        lease.choose_phase(str(run), results)


def test_out_limits_are_enforced_before_copying(tmp_path):
    small = tmp_path / "small"
    small.write_bytes(b"x")
    lease.check_out({f"f{k}.txt": small for k in range(8)})
    with pytest.raises(LeaseError, match="9 files"):
        lease.check_out({f"f{k}.txt": small for k in range(9)})
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(16 * lease.MIB + 1)  # sparse: no disk used
    with pytest.raises(LeaseError, match="big.pt is 16.00 MiB, over 16 MiB"):
        lease.check_out({"big.pt": big})
    with pytest.raises(LeaseError, match="letters, digits"):
        lease.check_out({"a b.txt": small})


def test_travelling_tree_is_measured_and_limited(tmp_path):
    repo = lease.REPO
    carry = tmp_path / "carry"
    carry.mkdir()
    (carry / "data.bin").write_bytes(b"0" * 3 * lease.MIB)
    sizes = lease.travelling_bytes(repo, [carry])
    assert sizes["tracked"] > 0 and sizes[f"sent along {carry}"] == 3 * lease.MIB
    total = lease.check_tree(repo, [], limit=10**12)
    with pytest.raises(LeaseError, match="over the"):
        lease.check_tree(repo, [], limit=total)


def test_work_folder_is_removed_only_when_this_tool_made_it(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    out = tmp_path / "OUT"
    argv = ["device", "--out", str(out), "--init", "none", "--stage", str(tmp_path / "stage"), "--work", str(mine)]
    assert lease.main(argv) == 1
    assert "not made by this tool" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    with pytest.raises(LeaseError, match="not a folder"):
        lease.fresh_work(mine / "notes.txt")
    # A new folder, or an empty one, gets the marker; a marked one is emptied and marked again.
    work = lease.fresh_work(tmp_path / "new" / "work")
    assert [p.name for p in work.iterdir()] == [lease.WORK_MARKER]
    (work / "mse").mkdir()
    (work / "mse" / "last.pt").write_bytes(b"old")
    assert [p.name for p in lease.fresh_work(work).iterdir()] == [lease.WORK_MARKER]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert [p.name for p in lease.fresh_work(empty).iterdir()] == [lease.WORK_MARKER]


def test_import_reads_the_evaluate_cli_results_and_checks_the_weights(monkeypatch, tmp_path):
    calls = []

    def fake_run(cmd, cwd=None, capture_output=False, text=False):
        calls.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        with open(out / "results.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image", "method", "sigma", "seed", "psnr", "ssim", "seconds", "weights", "hf", "hf_clean"])
            w.writerow(["kodim01.png", "idresnet", "25", "0", "30.0", "0.8", "1.0", "abc", "60", "100"])
            w.writerow(["kodim02.png", "idresnet", "25", "0", "32.0", "0.8", "1.0", "abc", "20", "300"])
            w.writerow(["kodim01.png", "idresnet", "25", "1", "10.0", "0.8", "1.0", "abc", "1", "100"])  # seed 1
            w.writerow(["kodim01.png", "dncnn", "25", "0", "20.0", "0.8", "1.0", "zzz", "1", "100"])
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(importing.subprocess, "run", fake_run)
    results = tmp_path / "kodak24"
    measured = lease.kodak_psnr_cli("idresnet", 25.0, "abc", 2, results)
    assert measured == (31.0, 2, pytest.approx(80 / 400))  # detail: mean energy over the clean images'
    assert calls[0][1:5] == ["-m", "denoisers.evaluate", "--data", "kodak24"] and calls[0][-2:] == ["--limit", "2"]
    assert calls[0][calls[0].index("--out") + 1] == str(results)  # the rows stay for docs/results
    assert "detail 0.20 (2 images)" in modelcard.measured_text(measured)
    with pytest.raises(LeaseError, match="not the imported"):
        lease.kodak_psnr_cli("idresnet", 25.0, "other", None, results)


def test_init_auto_continues_from_the_bundled_file(tmp_path):
    cfg = TINY.replace(sigma=[15, 55])
    assert lease.resolve_init("auto", cfg, tmp_path) is None
    (tmp_path / "idresnet_s15-55.pt").write_bytes(b"")
    assert lease.resolve_init("auto", cfg, tmp_path) == str(tmp_path / "idresnet_s15-55.pt")
    assert lease.resolve_init("none", cfg, tmp_path) is None
    with pytest.raises(LeaseError):
        lease.resolve_init(str(tmp_path / "missing.pt"), cfg, tmp_path)
    staged = tmp_path / "stage" / lease.STAGED_INIT  # a second job's start, staged with --init
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"")
    assert lease.resolve_init("auto", cfg, tmp_path, tmp_path / "stage") == str(staged)


def test_only_generator_files_are_staged_as_a_start(tmp_path):
    for name, content in (("junk.pt", b"not torch"), ("other.pt", None)):
        path = tmp_path / name
        if content is None:
            torch.save({"weights": 1}, path)
        else:
            path.write_bytes(content)
        with pytest.raises(LeaseError, match="generator file"):
            lease.stage(tmp_path / "stage", init=path)
    with pytest.raises(LeaseError, match="not a file"):
        lease.stage(tmp_path / "stage", init=tmp_path / "missing.pt")
    assert not (tmp_path / "stage").exists()  # refused before anything was copied


@pytest.mark.skipif(not MIRRORS, reason="stages the real CBSD432 and VGG19 files: set DENOISERS_DATA_MIRROR "
                                        "and DENOISERS_WEIGHTS_MIRROR to the shared datasets and weights folders")
def test_runbook_dry_run_stage_device_import_log(tmp_path, monkeypatch):
    staged = lease.stage(tmp_path / "stage", kodak=1)
    assert len(list((staged / "datasets/train/CBSD432").glob("*.jpg"))) == 432
    assert (staged / "weights/vgg19").is_dir() and json.loads((staged / "stage.json").read_text())["commit"]
    assert lease.check_tree(lease.REPO, [staged]) < lease.TREE_LIMIT

    # Device side: the mirrors point at the staged copy only (set by ``device`` itself).
    monkeypatch.delenv("DENOISERS_DATA_MIRROR")
    monkeypatch.delenv("DENOISERS_WEIGHTS_MIRROR")
    out = tmp_path / "OUT"
    cfg = TINY.replace(mse_steps=30, gan_steps=3, log_every=3, eval_every=1000)
    rc = lease.device(out, lease.parse_plan("mse:1,gan:1"), cfg, tmp_path / "work", staged)
    assert rc == 0
    assert os.environ["DENOISERS_DATA_MIRROR"].startswith(str(staged.resolve()))
    names = sorted(p.name for p in out.iterdir())
    assert names == ["idgan.pt", "idresnet.pt", "log.txt", "metrics_gan.jsonl", "metrics_mse.jsonl", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["init_sha256"] is None  # started from scratch
    gen = torch.load(out / "idgan.pt", weights_only=True)
    assert gen["steps"] == 33 and gen["commit"] == json.loads((staged / "stage.json").read_text())["commit"]

    # A second job on the same warm machine fine-tunes IDGAN from the first job's phase-1 run
    # folder (still on its disk), in its own work folder; the first job's folder is never cleared.
    with pytest.raises(LeaseError, match="inside --work"):
        lease.device(tmp_path / "OUT2", lease.parse_plan("gan:1"), cfg, tmp_path / "work", staged,
                     str(tmp_path / "work" / "mse"))
    assert (tmp_path / "work" / "mse" / "last.pt").exists()
    out2 = tmp_path / "OUT2"
    assert lease.device(out2, lease.parse_plan("gan:1"), cfg, tmp_path / "work2", staged,
                        str(tmp_path / "work" / "mse")) == 0
    assert sorted(p.name for p in out2.iterdir()) == ["idgan.pt", "log.txt", "metrics_gan.jsonl", "summary.json"]
    chained = json.loads((out2 / "summary.json").read_text())
    assert chained["init_sha256"] == sha256_of(out / "idresnet.pt") and chained["init_run_folder"]
    assert torch.load(out2 / "idgan.pt", weights_only=True)["steps"] == 33

    # Else (the machine went back): restage with the returned IDResNet (MSE only: no VGG).
    again = lease.stage(tmp_path / "stage2", kodak=1, vgg=False, init=out / "idresnet.pt")
    info = json.loads((again / "stage.json").read_text())
    assert info["init"]["sha256"] == sha256_of(out / "idresnet.pt") and info["init"]["steps"] == 30
    assert not (again / "weights").exists()
    assert lease.resolve_init("auto", cfg, tmp_path / "no-assets", again) == str(again / lease.STAGED_INIT)
    with pytest.raises(LeaseError, match="inside"):
        lease.stage(again, init=again / lease.STAGED_INIT)
    assert (again / lease.STAGED_INIT).exists()  # the refused restage removed nothing

    # CPU side: import into a scratch assets folder (the real one is measured by the CLI).
    monkeypatch.setenv("DENOISERS_DATA_MIRROR", str(staged / "datasets"))
    assets = tmp_path / "assets"
    assets.mkdir()
    from denoisers.weights import MANIFEST, read_manifest

    (assets / "manifest.json").write_text(MANIFEST.read_text())
    before = set(json.loads(MANIFEST.read_text()))
    (assets / "idresnet_s35.pt").write_bytes(b"stale")
    names = lease.import_results(out, assets, [25, 35, 50], psnr="inprocess", limit=1)
    assert names == ["idresnet_s25.pt", "idgan_s25.pt"]
    manifest = json.loads((assets / "manifest.json").read_text())
    assert set(manifest) == before | {"idresnet_s25", "idgan_s25"}
    entry = manifest["idgan_s25"]
    assert entry["bundled"] and entry["sigma"] == 25 and entry["arch"] == TINY.arch
    assert entry["sha256"] == sha256_of(assets / "idgan_s25.pt")
    assert entry["init_sha256"] == sha256_of(assets / "idresnet_s25.pt")  # this job's phase 1
    assert "init_sha256" not in manifest["idresnet_s25"]
    card = (assets / "idgan_s25.md").read_text()
    for text in ("sha256", "CBSD432", "30 MSE steps then 3 GAN steps", "Kodak24 PSNR", "commit", "hardware",
                 "Kodak detail during training | sigma 25: "):
        assert text in card
    assert not (assets / "idresnet_s35.pt").exists()  # stale, unreferenced file removed
    # The chained IDGAN's card names the bundled IDResNet it was fine-tuned from, by sha256.
    assert lease.import_results(out2, assets, [25], psnr="skip") == ["idgan_s25.pt"]
    card = (assets / "idgan_s25.md").read_text()
    assert (f"| started from | the bundled `idresnet_s25.pt` (its float32 weights, from the same machine), "
            f"sha256 `{sha256_of(assets / 'idresnet_s25.pt')}` (30 MSE steps) |") in card
    assert read_manifest(assets / "manifest.json")["idresnet_s25"].file == "idresnet_s25.pt"

    # The Leases log entry.
    doc = tmp_path / "training.md"
    doc.write_text(f"# T\n\n## Leases\n\n{leaselog.START}\n{leaselog.END}\n\n## After\n")
    leaselog.write(doc, leaselog.entry(sorted(out.glob("metrics_*.jsonl"))))
    leaselog.write(doc, leaselog.entry([out / "metrics_mse.jsonl"]))
    text = doc.read_text()
    assert text.count("| date |") == 1 and text.count("| mse |") == 2 and "| gan |" in text
    assert text.index("| mse |") < text.index("| gan |") and text.endswith("## After\n")
    gan_row = next(line for line in text.splitlines() if "| gan |" in line)
    assert gan_row.count("s25: ") == 2  # PSNR and detail, before -> after
    # Rows under an older header are never dropped nor misaligned: the write is refused.
    doc.write_text(text.replace("| Kodak detail before -> after ", ""))
    with pytest.raises(ValueError, match="other columns"):
        leaselog.write(doc, leaselog.entry([out / "metrics_mse.jsonl"]))
    assert doc.read_text() == text.replace("| Kodak detail before -> after ", "")


def test_results_verb_evaluates_the_test_sets_and_writes_the_document(tmp_path, data_mirror, weights_mirror):
    root = tmp_path / "results"
    env = {**os.environ, "PYTHON": sys.executable, "RESULTS": str(root)}
    done = subprocess.run(["bash", "train/lease.sh", "results", "ffdnet", "--limit", "1"], cwd=lease.REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("kodak24", "cbsd68", "mcmaster"):
        rows = pd.read_csv(root / name / "results.csv")
        assert sorted(rows["sigma"]) == [25, 35, 50] and set(rows["method"]) == {"ffdnet"} and rows["hf"].notna().all()
    document = (tmp_path / "results.md").read_text()
    assert [line for line in document.splitlines() if line.startswith("## ")] == \
        ["## kodak24", "## cbsd68", "## mcmaster"]


def _meta(method: str, steps: int, phase_steps: int) -> dict:
    return {"method": method, "steps": steps, "phase_steps": phase_steps, "sigma": [20.0, 55.0],
            "arch": dict(TINY.arch), "config": TINY.to_dict()}


def test_cards_say_which_generator_a_run_started_from(tmp_path):
    gan = _meta("idgan", 12059, 2990)
    assert importing.bundled_start(tmp_path, gan) is None  # no bundled IDResNet to compare with
    torch.save(_meta("idresnet", 9069, 9069), tmp_path / "idresnet_s20-55.pt")
    assert "bundled `idresnet_s20-55.pt` (9069 MSE steps)" in importing.bundled_start(tmp_path, gan)
    torch.save(_meta("idresnet", 14813, 5744), tmp_path / "idresnet_s20-55.pt")  # trained on after the GAN began
    note = importing.bundled_start(tmp_path, gan)
    assert "after 9069 MSE steps" in note and "to 14813 steps afterwards" in note
    assert importing.bundled_start(tmp_path, _meta("idresnet", 9069, 9069)) is None
    # A GAN-only job that started from a file is judged by its sha256, not by step counts.
    gan_job = {"plan": [{"phase": "gan", "minutes": 2}], "init_sha256": "b" * 64}
    assert "not the bundled `idresnet_s20-55.pt` (14813 steps)" in importing.bundled_start(tmp_path, gan, gan_job)
    gan_job["init_sha256"] = sha256_of(tmp_path / "idresnet_s20-55.pt")
    assert importing.bundled_start(tmp_path, gan, gan_job).startswith("the bundled `idresnet_s20-55.pt`, sha256")

    def card(meta, summary, started_from=None):
        return modelcard.render(modelcard.from_run("x.pt", "d" * 64, meta, [], summary, {}, "skip", None,
                                                   started_from))

    mse_job = {"plan": [{"phase": "mse", "minutes": 3}], "init_sha256": "a" * 64}
    assert f"| started from | the generator with sha256 `{'a' * 64}` |" in card(_meta("idresnet", 14813, 5744), mse_job)
    assert ("14813 MSE steps in all: 5744 in this run, continued from a 9069-step generator with a fresh Adam"
            in card(_meta("idresnet", 14813, 5744), mse_job))
    assert "started from" not in card(_meta("idresnet", 9069, 9069), {})
    # In a job that trains both phases, IDGAN starts from that job's phase 1, not from the job's --init.
    both = {"plan": [{"phase": "mse", "minutes": 3}, {"phase": "gan", "minutes": 2}], "init_sha256": "a" * 64}
    assert "started from" not in card(gan, both)
    assert "| started from | note |" in card(gan, both, "note")
    warm = {**_meta("idresnet", 100, 100), "config": TINY.replace(lr_warmup=200).to_dict()}
    assert "of the run, linear warm-up over the first 200 steps |" in card(warm, {})
    assert "of the run |" in card(_meta("idresnet", 100, 100), {})


def test_a_new_idresnet_refreshes_what_the_bundled_idgans_card_says_of_its_start(tmp_path):
    """The refresh works from the card's facts: the old card text is not read (here it is
    garbage) and is replaced by a card rendered again from the facts."""
    gan_card = tmp_path / "idgan_s20-55.md"
    gan = _meta("idgan", 12059, 2990)  # fine-tuned after 9069 MSE steps
    torch.save(gan, tmp_path / "idgan_s20-55.pt")

    def bundle(idresnet_steps: int, start_sha256: str | None = None, run_folder: bool = False) -> str:
        torch.save(_meta("idresnet", idresnet_steps, 5000), tmp_path / "idresnet_s20-55.pt")
        modelcard.write(tmp_path, modelcard.CardFacts("idgan_s20-55.pt", "e" * 64, gan, started_from="stale",
                                                      start_sha256=start_sha256, start_run_folder=run_folder))
        gan_card.write_text("not a card any more")
        lease.refresh_gan_card(tmp_path, "s20-55")
        return gan_card.read_text()

    text = bundle(35249)
    assert ("| started from | an IDResNet after 9069 MSE steps; the bundled `idresnet_s20-55.pt` trained on to "
            "35249 steps afterwards, so this IDGAN's PSNR cost against it includes that difference |\n| loss |"
            in text)
    assert "not a card" not in text and text.startswith("# idgan_s20-55.pt: IDGAN")
    assert bundle(9069).count("| started from | the bundled `idresnet_s20-55.pt` (9069 MSE steps) |") == 1
    # A start named by its sha256 is judged by it: the same file, then another one.
    sha = sha256_of(tmp_path / "idresnet_s20-55.pt")
    text = bundle(9069, sha)
    assert f"| started from | the bundled `idresnet_s20-55.pt`, sha256 `{sha}` (9069 MSE steps) |" in text
    text = bundle(9069, sha, run_folder=True)
    assert (f"| started from | the bundled `idresnet_s20-55.pt` (its float32 weights, from the same machine), "
            f"sha256 `{sha}` (9069 MSE steps) |") in text
    text = bundle(20000, sha, run_folder=True)
    assert f"| started from | the IDResNet with sha256 `{sha}` (9069 MSE steps), not the bundled" in text
    assert modelcard.read(tmp_path, "idgan_s20-55.pt").started_from.startswith("the IDResNet with sha256")
    gan_card.unlink()
    modelcard.facts_path(tmp_path, "idgan_s20-55.pt").unlink()
    lease.refresh_gan_card(tmp_path, "s20-55")  # no facts, nothing to refresh
    assert not gan_card.exists()


def test_a_card_is_rendered_from_its_facts_and_they_round_trip(tmp_path):
    meta = {**_meta("idgan", 12059, 2990), "device": "NVIDIA H200", "torch": "2.11", "created": "2026-12-04",
            "commit": "c" * 40, "state_dict": {"w": torch.zeros(1)}}
    metrics = [{"event": "eval", "step": 0, "images": ["a.png", "b.png"], "psnr_s25": 30.0, "detail_s25": 0.5},
               {"event": "eval", "step": 5, "images": ["a.png", "b.png"], "psnr_s25": 30.5, "detail_s25": 0.6},
               {"event": "eval", "step": 9, "images": ["a.png", "b.png"], "psnr_s25": 29.5, "detail_s25": 0.9},
               {"event": "end", "step": 9, "seconds": 12.5, "it_s": 0.7}]
    summary = {"plan": [{"phase": "gan", "minutes": 2}], "init_sha256": "a" * 64, "init_run_folder": True}
    facts = modelcard.from_run("idgan_s20-55.pt", "d" * 64, meta, metrics, summary,
                               {25.0: modelcard.Measured(30.12, 24, 0.95)}, "cli", None)
    assert "state_dict" not in facts.meta and len(facts.evals) == 2  # the first and the last only
    assert facts.start_sha256 == "a" * 64 and facts.start_run_folder
    card = modelcard.render(facts)
    for row in ("| sha256 | `" + "d" * 64 + "` |", "| steps | 9069 MSE steps then 2990 GAN steps, batch",
                "| Kodak PSNR during training (2 images) | sigma 25: 30.00 -> 29.50 dB |",
                "| Kodak detail during training | sigma 25: 0.50 -> 0.90 |",
                "| training time | 12.5 s at 0.7 it/s |", "| hardware | NVIDIA H200, torch 2.11, fp32 |",
                "| Kodak24 PSNR (CPU, `python -m denoisers.evaluate`) | sigma 25: 30.12 dB, detail 0.95 (24 images) |",
                f"| started from | the generator with sha256 `{'a' * 64}` (its float32 weights"):
        assert row in card, row
    path = modelcard.write(tmp_path, facts)
    assert path.read_text() == card and modelcard.read(tmp_path, "idgan_s20-55.pt") == facts
    assert modelcard.render(facts.replace(hardware="GPU X")).count("| hardware | GPU X, torch 2.11") == 1
    assert modelcard.read(tmp_path, "idresnet_s20-55.pt") is None


def test_the_bundled_cards_are_their_facts_rendered():
    """Each bundled card has its facts beside it, and rendering them gives the card as shipped."""
    from denoisers.weights import ASSETS

    cards = sorted(ASSETS.glob("*.md"))
    assert cards
    for card in cards:
        facts = modelcard.read(ASSETS, card.with_suffix(".pt").name)
        assert facts is not None, card.name
        assert modelcard.render(facts) == card.read_text(), card.name
        assert facts.sha256 == sha256_of(card.with_suffix(".pt"))


def test_log_orders_the_phases_of_one_job_when_they_start_in_the_same_second(tmp_path):
    def metrics(phase: str, steps_before: int, steps: int) -> Path:
        rows = [{"event": "start", "step": 0, "phase": phase, "device": "GPU", "world_size": 1,
                 "sigma": [20.0, 55.0], "steps_before": steps_before, "time": "2026-11-27T10:00:00+00:00"},
                {"event": "train", "step": steps, "it_s": 10.0},
                {"event": "end", "step": steps, "seconds": 60.0}]
        path = tmp_path / f"metrics_{phase}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    gan, mse = metrics("gan", 900, 30), metrics("mse", 0, 900)  # glob order puts gan first
    text = leaselog.entry([gan, mse])
    assert text.index("| mse |") < text.index("| gan |")
    assert "| 900 / 900 |" in text and "| 30 / 930 |" in text


# What the GPU machine's Python lacks (its package list in the device notes): the app's and
# the baselines' libraries. The device job must not import any of them.
NOT_ON_THE_GPU_MACHINE = ("gradio", "gradio_client", "bm3d", "pywt", "plotly")
BLOCKER = f'''import sys
class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {NOT_ON_THE_GPU_MACHINE!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on the GPU machine)")
sys.meta_path.insert(0, _Missing())
'''


@pytest.mark.skipif(not MIRRORS, reason="stages the real CBSD432 and VGG19 files: set DENOISERS_DATA_MIRROR "
                                        "and DENOISERS_WEIGHTS_MIRROR")
def test_the_device_command_runs_without_what_the_gpu_machine_lacks(tmp_path):
    staged = lease.stage(tmp_path / "stage", kodak=1)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    out = tmp_path / "OUT"
    out.mkdir()
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out),
           "PYTHONPATH": os.pathsep.join([str(site), str(lease.REPO)])}
    env.pop("DENOISERS_DATA_MIRROR")  # the job reads the staged copy only
    env.pop("DENOISERS_WEIGHTS_MIRROR")
    missing = subprocess.run([sys.executable, "-c", "import gradio"], env=env, capture_output=True, text=True)
    assert "not on the GPU machine" in missing.stderr  # the blocker is in force
    job = ["bash", "train/lease.sh", "device", "--preset", "tiny", "--plan", "mse:0.2,gan:0.2", "--init", "none",
           "--stage", str(staged), "--work", str(tmp_path / "work"),
           "--set", "mse_steps=6", "--set", "gan_steps=2", "--set", "eval_images=1"]
    done = subprocess.run(job, cwd=lease.REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert {"idresnet.pt", "idgan.pt", "summary.json"} <= {p.name for p in out.iterdir()}
    assert not json.loads((out / "summary.json").read_text())["failed"]
    # A second job decides its phase on the machine: the tiny generator is far below DnCNN.
    out2 = tmp_path / "OUT2"
    out2.mkdir()
    second = ["bash", "train/lease.sh", "device", "--preset", "tiny", "--plan", "auto:0.2", "--init",
              str(tmp_path / "work" / "mse"), "--stage", str(staged), "--work", str(tmp_path / "work2"),
              "--set", "mse_steps=4", "--set", "eval_images=1"]
    done = subprocess.run(second, cwd=lease.REPO, env={**env, "OUT": str(out2)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "plan auto: mse (IDResNet (step 6 of" in done.stdout and "is below dncnn at sigma 25: " in done.stdout
    summary = json.loads((out2 / "summary.json").read_text())
    assert summary["plan"] == [{"phase": "mse", "minutes": 0.2}] and "is below dncnn" in summary["plan_choice"]
