"""The fit folder is all one fit or none: saved whole, interruptions leave the old fit or the new
one, and a damaged or mixed folder is refused with the file named. The fits here are made by
hand (one draw per parameter), so no test compiles a sampler."""
import json
import os
import subprocess
import sys
from pathlib import Path

import arviz as az
import numpy as np
import pytest

from infscale_dsl import files
from infscale_dsl.errors import LawError
from infscale_dsl.language import load_spec
from infscale_dsl.language.ast import Noise
from infscale_dsl.model.likelihood import with_default_noise
from infscale_dsl.posterior.result import FitResult

REPO = Path(__file__).resolve().parents[1]
SPEC = "loss ~ A/N^a + B/D^b + E\n"


def hand_made_fit(value: float = 1.0) -> FitResult:
    """A point fit whose every parameter is `value`: two of them tell old from new."""
    spec = load_spec(SPEC, columns=["N", "D", "loss"])
    posterior = {name: np.full((1, 1), value) for name in spec.parameters}
    return FitResult(spec=spec, method="map", idata=az.from_dict(posterior=posterior), levels={},
                     data_ranges={"N": (1e7, 1e9), "D": (1e9, 1e11)}, n_obs={"loss": 12},
                     left_out={"loss": 0}, data_sha256="0" * 64, columns=("N", "D", "loss"))


def fitted_value(folder: Path) -> float:
    return float(FitResult.load(folder).draws["A"][0])


def test_every_file_carries_the_fit_id_and_the_folder_round_trips(tmp_path):
    folder = hand_made_fit(2.0).save(tmp_path / "fit")
    meta = json.loads((folder / "fit.json").read_text())
    assert len(meta["fit_id"]) == 32
    assert json.loads((folder / "summary.json").read_text())["fit_id"] == meta["fit_id"]
    assert az.from_netcdf(str(folder / "posterior.nc")).posterior.attrs["fit_id"] == meta["fit_id"]
    assert (folder / "spec.law").read_text() == SPEC  # the spec itself stays as written; fit.json holds its hash
    assert fitted_value(folder) == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]  # no temporaries left


def test_the_noise_as_fitted_comes_back_and_older_folders_keep_normal(tmp_path):
    # a law that declares no noise gets it from its table (StudentT on many rows): the folder
    # must give predictions the noise the fit used, not the one the spec text reads as
    fitted = hand_made_fit()
    fitted.spec = with_default_noise(fitted.spec, {"loss": 50})
    folder = fitted.save(tmp_path / "fit")
    assert FitResult.load(folder).spec.laws[0].noise == Noise("StudentT", "log", 4.0, default=True)
    meta = json.loads((folder / "fit.json").read_text())
    del meta["noise"]  # as written before the table chose the default noise: Normal then
    (folder / "fit.json").write_text(json.dumps(meta))
    assert FitResult.load(folder).spec.laws[0].noise == Noise("Normal", "log", default=True)


def test_saving_again_replaces_the_fit_whole(tmp_path):
    folder = hand_made_fit(1.0).save(tmp_path / "fit")
    first_id = json.loads((folder / "fit.json").read_text())["fit_id"]
    hand_made_fit(2.0).save(folder)
    assert fitted_value(folder) == 2.0 and json.loads((folder / "fit.json").read_text())["fit_id"] != first_id


def mixed(folder: Path, other: Path, name: str) -> None:
    (folder / name).write_bytes((other / name).read_bytes())


@pytest.mark.parametrize("name", ["posterior.nc", "summary.json"])
def test_a_folder_mixing_two_fits_is_refused(tmp_path, name):
    old, new = hand_made_fit(1.0).save(tmp_path / "old"), hand_made_fit(2.0).save(tmp_path / "new")
    mixed(new, old, name)
    with pytest.raises(LawError, match=f"mixes two fits: {name} did not come from the fit in fit.json"):
        FitResult.load(new)


def test_an_edited_spec_copy_is_refused(tmp_path):
    folder = hand_made_fit().save(tmp_path / "fit")
    (folder / "spec.law").write_text("loss ~ A/N^a + E\n")
    with pytest.raises(LawError, match="spec.law did not come from the fit"):
        FitResult.load(folder)


# where a save is interrupted -> (the call that fails, its number): posterior.nc is written
# first, then spec.law, summary.json and fit.json; the swap renames the old folder aside, then
# the new one in
INTERRUPTIONS = {
    "after posterior.nc": ("write", 2), "after spec.law": ("write", 3), "after summary.json": ("write", 4),
    "before the old fit moves aside": ("rename", 1), "between the renames": ("rename", 2),
}


@pytest.mark.parametrize("what, call", INTERRUPTIONS.values(), ids=INTERRUPTIONS.keys())
def test_an_interrupted_save_leaves_the_old_fit_or_the_new_one(tmp_path, monkeypatch, what, call):
    folder = hand_made_fit(1.0).save(tmp_path / "fit")
    new = hand_made_fit(2.0)
    calls = []

    def failing(original):
        def wrapped(*args, **kwargs):
            calls.append(args)
            if len(calls) == call:
                raise KeyboardInterrupt  # Ctrl-C, or any error, at that moment
            return original(*args, **kwargs)
        return wrapped

    if what == "write":
        monkeypatch.setattr(az.InferenceData, "to_netcdf", failing(az.InferenceData.to_netcdf))
        monkeypatch.setattr(Path, "write_text", failing(Path.write_text))
    else:
        monkeypatch.setattr(files.os, "rename", failing(os.rename))
    with pytest.raises(KeyboardInterrupt):
        new.save(folder)
    monkeypatch.undo()
    assert fitted_value(folder) == (2.0 if call == 2 and what == "rename" else 1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]


def test_a_ctrl_c_that_python_swallowed_still_keeps_the_old_fit(tmp_path, monkeypatch, capsys):
    """JAX's garbage-collection callback can catch the KeyboardInterrupt of a Ctrl-C ("Exception
    ignored in ..."), and the fit runs on to its end: `fit` must still not swap its folder in."""
    import signal
    from infscale_dsl import cli
    from infscale_dsl.inference import fit as fit_module

    folder = hand_made_fit(1.0).save(tmp_path / "fit")
    (tmp_path / "runs.csv").write_text("N,D,loss\n1e7,1e9,3.1\n1e8,1e10,3.0\n")
    (tmp_path / "spec.law").write_text(SPEC)

    def fit_hit_by_a_swallowed_ctrl_c(*args, **kwargs):
        try:
            signal.raise_signal(signal.SIGINT)  # the CLI's handler records it, then raises
        except KeyboardInterrupt:
            pass  # what the callback does with it
        return hand_made_fit(2.0)

    monkeypatch.setattr(fit_module, "fit", fit_hit_by_a_swallowed_ctrl_c)
    handler_before = signal.getsignal(signal.SIGINT)
    code = cli.main(["fit", str(tmp_path / "spec.law"), str(tmp_path / "runs.csv"), "-o", str(folder), "-q"])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert fitted_value(folder) == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit", "runs.csv", "spec.law"]
    assert signal.getsignal(signal.SIGINT) is handler_before  # the CLI's handler is put back
    assert not files.was_interrupted()  # and the next command in this process starts clean


KILLED_BETWEEN_RENAMES = """
import os, sys
sys.path.insert(0, {tests!r})
from test_fit_folder import hand_made_fit
from infscale_dsl import files
rename = os.rename
def rename_then_die(source, target):
    rename(source, target)
    os._exit(9)  # as kill -9 would: no finally, no clean-up
files.os.rename = rename_then_die
hand_made_fit(2.0).save({folder!r})
"""


def test_a_save_killed_between_its_renames_is_recovered_on_load(tmp_path):
    folder = hand_made_fit(1.0).save(tmp_path / "fit")
    script = KILLED_BETWEEN_RENAMES.format(tests=str(REPO / "tests"), folder=str(folder))
    env = os.environ | {"PYTHONPATH": str(REPO)}
    assert subprocess.run([sys.executable, "-c", script], env=env).returncode == 9
    assert not folder.exists() and len(list(tmp_path.iterdir())) == 2  # the old fit aside, the new one beside
    assert fitted_value(folder) == 2.0  # the new fit was complete before the old one moved
    hand_made_fit(3.0).save(folder)  # the next save clears what the killed one left
    assert fitted_value(folder) == 3.0 and sorted(p.name for p in tmp_path.iterdir()) == ["fit"]


def test_stale_temporaries_are_cleaned_on_the_next_save(tmp_path):
    folder = hand_made_fit(1.0).save(tmp_path / "fit")
    (tmp_path / ".fit.new-0123abcd").mkdir()  # left by a save killed while writing
    (tmp_path / ".fit.new-0123abcd" / "posterior.nc").write_text("half")
    (tmp_path / ".fitting.new-1").mkdir()  # another folder's name: not ours to delete
    hand_made_fit(2.0).save(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fitting.new-1", "fit"]


def test_the_current_folder_is_not_replaced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder in (".", str(tmp_path), ".."):
        with pytest.raises(LawError, match="the fit folder would replace the current folder"):
            hand_made_fit().save(folder)


def test_a_mount_point_is_refused_before_the_fit(tmp_path, monkeypatch):
    """A mount point (a Docker volume, say) cannot be renamed aside for the swap: say so at once,
    not with an OSError after the fit has run."""
    (tmp_path / "volume").mkdir()
    monkeypatch.setattr(files.os.path, "ismount", lambda path: Path(path).name == "volume")
    with pytest.raises(LawError, match="would replace a mount point") as error:
        files.check_output_folder(tmp_path / "volume", [])
    assert "volume/fit" in str(error.value)  # the hint names a folder inside it
    files.check_output_folder(tmp_path / "volume" / "fit", [])  # which is fine


def cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def drop_key(path: Path, key: str = "levels") -> None:
    meta = json.loads(path.read_text())
    del meta[key]
    path.write_text(json.dumps(meta))


# (damage, file, expected message)
DAMAGE = [
    (cut_short, "posterior.nc", "posterior.nc cannot be read (OSError"),
    (Path.unlink, "posterior.nc", "posterior.nc is missing"),
    (lambda p: az.from_dict(observed_data={"loss": np.ones(3)}).to_netcdf(str(p)), "posterior.nc",
     "posterior.nc cannot be read (ValueError: no posterior group in it)"),
    (cut_short, "fit.json", "fit.json is not valid JSON"),
    (drop_key, "fit.json", "fit.json has no entry 'levels'"),
    (lambda p: drop_key(p, "fit_id"), "fit.json", "fit.json has no fit id (written by an older infscale-dsl?)"),
    (lambda p: p.write_text("[1, 2]"), "fit.json", "fit.json does not hold a JSON object"),
    (lambda p: p.write_bytes(b"\xff\xfe"), "summary.json", "summary.json is not text"),
    (Path.unlink, "summary.json", "summary.json is missing"),
    (Path.unlink, "spec.law", "spec.law is missing"),
]


@pytest.mark.parametrize("damage, name, message", DAMAGE, ids=[f"{n}-{m[len(n) + 1:][:16]}" for _, n, m in DAMAGE])
def test_a_damaged_folder_names_the_file_and_says_refit(tmp_path, damage, name, message):
    folder = hand_made_fit().save(tmp_path / "fit")
    damage(folder / name)
    with pytest.raises(LawError) as error:
        FitResult.load(folder)
    (diagnostic,) = error.value.diagnostics
    assert message in diagnostic.message and diagnostic.filename == str(folder / name)
    assert diagnostic.hint == f"refit it: infscale-dsl fit SPEC TABLE -o {folder}"
