"""The command line, ``python -m pykernels`` (pykernels/__main__.py), as a user meets it.

- a mistake on the command line is caught before any work starts and ends the command with exit
  status 2 and one line on stderr, ``pykernels <command>: error: ...``: no usage line, no traceback.
"""
import os
import subprocess
import sys

import pytest

from pykernels.__main__ import main

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _mistakes(tmp_path):
    """(command line, words the error must name) for each mistake."""
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    return [
        ([], "command"),
        (["no_such_command"], "no_such_command"),
        (["run"], "SCRIPT"),
        (["run", str(tmp_path / "no_such_script.py")], "no_such_script.py"),
        (["run", "-m", "no_such_module_of_pykernels"], "no_such_module_of_pykernels"),
        (["bench", "--ops", "no_such_op"], "no_such_op"),
        (["bench", "--min-run-time", "-1"], "--min-run-time"),
        (["bench", "--min-run-time", "0"], "--min-run-time"),
        (["bench", "--min-run-time", "nan"], "--min-run-time"),
        (["bench", "--min-run-time", "soon"], "--min-run-time"),
        (["bench", "--threads", "0"], "--threads"),
        (["bench", "--out", str(a_file / "results")], "--out"),
        (["bench", "--plot"], "--out"),
        (["bench", "--suite", "no_such_suite"], "--suite"),
        (["train", "--plot", str(tmp_path / "no_such_dir" / "loss.png")], "--plot"),
        (["train", "--plot", str(tmp_path)], "--plot"),
        (["train", "--iters", "0"], "--iters"),
        (["train", "--variant", "nope"], "--variant"),
        (["train", "--device", "tpu"], "--device"),
    ]


def _command(argv):
    return argv[0] if argv and argv[0] in ("run", "bench", "train", "info") else None


def test_every_mistake_exits_2_with_one_line_before_any_work(tmp_path, capsys):
    for argv, names in _mistakes(tmp_path):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        out, err = capsys.readouterr()
        prefix = f"pykernels {_command(argv)}: error: " if _command(argv) else "pykernels: error: "
        assert exit_info.value.code == 2, argv
        assert err.startswith(prefix) and err.count("\n") == 1 and err.endswith("\n"), (argv, err)
        assert names in err, (argv, err)
        assert out == "", (argv, out)  # nothing ran: bench and train print their first line at once


def test_run_without_arguments_names_only_the_script(capsys):
    with pytest.raises(SystemExit):
        main(["run"])
    assert capsys.readouterr().err == "pykernels run: error: the following arguments are required: SCRIPT\n"


@pytest.mark.parametrize("argv", [["run", "no_such_script.py"], ["bench", "--ops", "no_such_op"]])
def test_mistakes_from_the_shell(argv, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pykernels", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"pykernels {argv[0]}: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stdout == ""
    assert not os.path.exists(os.path.join(ROOT, "no_such_script.py"))
