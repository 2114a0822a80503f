"""The command line, ``python -m pykernels`` (pykernels/__main__.py), as a user meets it.

- a mistake on the command line is caught before any work starts and ends the command with exit
  status 2 and one line on stderr, ``pykernels <command>: error: ...``: no usage line, no traceback;
- ``run`` passes a script's exit status on; a script that raises gets its own traceback, without
  the frames that ran it, and exit status 1; the routing report follows a script that made torch
  calls, and not one that stopped at its own --help or usage error;
- on a machine with a CUDA toolkit and no GPU, no command prints torch's "No CUDA runtime is
  found" warning.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from pykernels import dropin
from pykernels.__main__ import main

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPTS = os.path.join(HERE, "scripts")


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
    proc = subprocess.run(
        [sys.executable, "-m", "pykernels", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"pykernels {argv[0]}: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stdout == ""
    assert not os.path.exists(os.path.join(ROOT, "no_such_script.py"))


# ---------------------------------------------------------------------------------------------- run


def _script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_a_script_that_raises_shows_its_own_frames(tmp_path, capsys):
    script = _script(
        tmp_path,
        "boom.py",
        """\
        import torch


        def inner():
            raise ValueError("boom")


        x = torch.ones(2) * 2
        inner()
        """,
    )
    assert main(["run", script]) == 1
    err = capsys.readouterr().err
    traceback_text = err.split("pykernels drop-in report")[0]
    assert traceback_text.startswith("Traceback (most recent call last):\n")
    files = [line.split('"')[1] for line in traceback_text.splitlines() if line.startswith('  File "')]
    assert files == [script, script], traceback_text  # the module line, then inner()
    assert "runpy" not in traceback_text and "pykernels" not in traceback_text
    assert traceback_text.rstrip().endswith("ValueError: boom")
    assert "torch.Tensor.mul" in err  # the report follows: the script did torch work before it raised


def test_a_script_with_a_syntax_error(tmp_path, capsys):
    script = _script(tmp_path, "broken.py", "x = (\n")
    assert dropin.run_script(script, report=False) == 1
    err = capsys.readouterr().err
    assert "SyntaxError" in err and script in err and "runpy" not in err


ARGPARSE_SCRIPT = """\
    import argparse

    import torch

    parser = argparse.ArgumentParser(prog="count")
    parser.add_argument("--n", type=int, required=True)
    args = parser.parse_args()
    print((torch.ones(args.n) * 2).sum().item())
    """


@pytest.mark.parametrize(
    "args,status,stream,text",
    [
        (["--help"], 0, "out", "usage: count"),
        ([], 2, "err", "count: error: the following arguments are required: --n"),
    ],
)
def test_no_report_after_the_scripts_own_help_or_usage_error(tmp_path, capsys, args, status, stream, text):
    script = _script(tmp_path, "count.py", ARGPARSE_SCRIPT)
    assert main(["run", script, *args]) == status
    captured = capsys.readouterr()
    assert text in getattr(captured, stream)
    assert "pykernels drop-in report" not in captured.err


def test_report_after_a_script_that_ran(tmp_path, capsys):
    script = _script(tmp_path, "count.py", ARGPARSE_SCRIPT)
    assert main(["run", script, "--n", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "6.0\n"
    assert "pykernels drop-in report" in captured.err and "torch.Tensor.mul" in captured.err


def test_report_after_sys_exit(capsys):
    assert main(["run", os.path.join(SCRIPTS, "argv_exit.py"), "4"]) == 4
    assert "pykernels drop-in report" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- no CUDA warning

_COMMANDS = """\
import sys
from pykernels.__main__ import main

script = sys.argv[1]
assert main(["run", "--no-report", script, "0"]) == 0
assert main(["train", "--variant", "manual", "--iters", "2"]) == 0
assert main(["bench", "--suite", "quick", "--ops", "add", "--min-run-time", "0.01", "--no-peak"]) == 0
"""
_WARNING = "No CUDA runtime is found"


@pytest.mark.skipif(
    torch.cuda.is_available() or not torch.version.cuda,
    reason="torch warns only where it is a CUDA build and no GPU is visible",
)
def test_no_cuda_runtime_warning_without_a_gpu(tmp_path):
    # CUDA_HOME pointing at any directory is, to torch, a CUDA toolkit: the warning's condition.
    env = dict(os.environ, CUDA_HOME=str(tmp_path), OMP_NUM_THREADS="1")
    probe = subprocess.run(
        [sys.executable, "-c", "import torch.utils.cpp_extension"], env=env, capture_output=True, text=True, timeout=300
    )
    if _WARNING not in probe.stderr:
        pytest.skip("this torch does not print the warning on importing cpp_extension")
    proc = subprocess.run(
        [sys.executable, "-c", _COMMANDS, os.path.join(SCRIPTS, "argv_exit.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert _WARNING not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["argv"][1:] == ["0"]  # the script ran, then train and bench
    assert "pykernels train:" in proc.stdout and "| add |" in proc.stdout
