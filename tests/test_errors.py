"""The error classes: each user mistake raises the class of what must be fixed (the spec, a table,
an option or config file), all under InfscaleError, which the old name LawError still catches;
the CLI exits 2 on every one of them."""
import numpy as np
import pandas as pd
import pytest

import infscale_dsl as isd
from infscale_dsl import errors
from infscale_dsl.cli import main
from infscale_dsl.errors import ConfigError, DataError, InfscaleError, LawError, SpecError, require_extra
from infscale_dsl.report.conditions import Condition

SPEC = "loss ~ A/N^alpha + E\nalpha ~ Normal(0.5, 0.2)\n"
TYPO = "loss ~ A/N^alhpa + E\nalpha ~ Normal(0.5, 0.2)\n"


@pytest.fixture
def files(tmp_path):
    """A good spec, a spec with a typo, a good table and one with a negative N, on disk."""
    table = pd.DataFrame({"N": np.geomspace(1e7, 1e9, 8), "loss": np.linspace(3.5, 2.5, 8)})
    table.to_csv(tmp_path / "runs.csv", index=False)
    table.assign(N=table["N"].where(table.index != 2, -5.0)).to_csv(tmp_path / "negative.csv", index=False)
    (tmp_path / "good.law").write_text(SPEC)
    (tmp_path / "typo.law").write_text(TYPO)
    return tmp_path


def test_the_three_classes_sit_under_the_base_and_its_old_name():
    assert LawError is InfscaleError
    for error_class in (SpecError, DataError, ConfigError):
        assert issubclass(error_class, LawError) and error_class is not InfscaleError
    assert not issubclass(SpecError, (DataError, ConfigError)) and not issubclass(DataError, ConfigError)


def test_the_package_exports_them():
    for name in ("InfscaleError", "SpecError", "DataError", "ConfigError", "LawError"):
        assert getattr(isd, name) is getattr(errors, name)


def test_a_spec_typo_is_a_spec_error_at_its_line_and_column():
    with pytest.raises(SpecError) as error:
        isd.load_spec(TYPO, columns=["N", "loss"])
    (diagnostic,) = error.value.diagnostics
    assert (diagnostic.line, diagnostic.column) == (1, 12) and "unknown name 'alhpa'" in diagnostic.message


def test_a_syntax_error_is_a_spec_error_too():
    with pytest.raises(SpecError, match="'\\*\\*' is not an operator"):
        isd.load_spec("loss ~ A/N**alpha + E", columns=["N", "loss"])


def test_code_catching_law_error_still_catches_each_class():
    with pytest.raises(LawError):
        isd.load_spec(TYPO, columns=["N", "loss"])
    with pytest.raises(LawError):
        Condition.parse("loss =< 3")


def test_a_table_missing_a_column_is_a_data_error_naming_it():
    # the spec checked against the fitted table, then given another, as predict gives candidates
    spec = isd.load_spec(SPEC, columns=["N", "loss"])
    with pytest.raises(DataError) as error:
        isd.prepare(spec, pd.DataFrame({"M": [1e7, 1e8], "loss": [3.0, 2.8]}), filename="runs.csv")
    (diagnostic,) = error.value.diagnostics
    assert diagnostic.table_column == "N" and "column 'N' is not in the table" in diagnostic.message


def test_a_negative_value_is_a_data_error_naming_the_column_and_rows(files):
    table = isd.read_table(files / "negative.csv")
    with pytest.raises(DataError) as error:
        isd.prepare(isd.load_spec(SPEC, columns=table.columns), table)
    (diagnostic,) = error.value.diagnostics
    assert (diagnostic.table_column, diagnostic.rows) == ("N", (2,)) and "must be > 0" in diagnostic.message


def test_a_bad_condition_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot read the condition 'loss =< 3'"):
        Condition.parse("loss =< 3")


def test_a_bad_sweep_file_is_a_config_error(tmp_path):
    from infscale_dsl.nn.sweep import load_sweep

    (tmp_path / "sweep.toml").write_text("[grid]\ntokens_per_parm = [10]\n")
    with pytest.raises(ConfigError, match="unknown key 'tokens_per_parm'"):
        load_sweep(tmp_path / "sweep.toml")


def test_the_cli_exits_2_on_a_spec_error(files, capsys):
    assert main(["check", str(files / "typo.law"), str(files / "runs.csv")]) == 2
    assert f"{files / 'typo.law'}:1:12: error: unknown name 'alhpa'" in capsys.readouterr().err


def test_the_cli_exits_2_on_a_data_error(files, capsys):
    assert main(["check", str(files / "good.law"), str(files / "negative.csv")]) == 2
    assert "column 'N', rows 2" in capsys.readouterr().err


def test_rows_are_named_as_in_the_file_after_where(files, capsys):
    # --where keeps rows 2 to 7; the bad N is the file's row 2, not the selection's first
    argv = ["fit", str(files / "good.law"), str(files / "negative.csv"), "--where", "loss < 3.3",
            "--method", "map", "-o", str(files / "fit")]
    assert main(argv) == 2
    assert "column 'N', rows 2 (counted from 0, the header not counted)" in capsys.readouterr().err


def test_the_cli_exits_2_on_a_config_error(files, capsys):
    # a row rule that is not a test: refused before any fitting
    assert main(["fit", str(files / "good.law"), str(files / "runs.csv"), "-o", str(files / "fit"),
                 "--where", "N >>> 1e8", "--quiet"]) == 2
    assert "cannot evaluate the row rule 'N >>> 1e8'" in capsys.readouterr().err
    (files / "sweep.toml").write_text("seed = \n")
    assert main(["sweep", str(files / "sweep.toml"), "-o", str(files / "runs.parquet"), "--quiet"]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_an_extra_whose_own_dependency_is_missing_is_not_reported_as_absent(tmp_path, monkeypatch):
    (tmp_path / "half_installed").mkdir()
    (tmp_path / "half_installed" / "__init__.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as error:
        require_extra("half_installed", "corpus", "the default corpus")
    assert "installed but cannot import its dependency 'no_such_dependency_xyz'" in str(error.value)
    assert error.value.diagnostics[0].hint == "install it with its dependencies: pip install 'infscale-dsl[corpus]'"
    with pytest.raises(ConfigError, match="needs the 'not_installed_xyz' package, which is not installed"):
        require_extra("not_installed_xyz", "ray", "--on ray")


def test_long_lists_in_hints_say_how_many_are_left_out():
    from infscale_dsl.errors import listed

    assert listed(["a", "b"]) == "a, b"
    assert listed([f"c{i}" for i in range(22)]) == ", ".join(f"c{i}" for i in range(20)) + " and 2 more"
    assert listed(range(7), 5) == "0, 1, 2, 3, 4 and 2 more"
