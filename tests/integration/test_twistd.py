"""`twistd mailstack` as an operator runs it, in a child process."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from twisted_mail_stack.service import LISTENER_KINDS

REPO = Path(__file__).resolve().parents[2]
TWISTD = str(Path(sys.executable).with_name("twistd"))
ANY_PORT = [f"--{kind.key}=tcp:0:interface=127.0.0.1" for kind in LISTENER_KINDS]


def start(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [TWISTD, "-n", "--pidfile=", "mailstack", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for(process: subprocess.Popen[bytes], text: str, timeout: float = 30) -> list[str]:
    """Read the child's log until a line holds C{text}; fail if it exits or times out first."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            output += chunk
            lines = output.decode("utf-8", "replace").splitlines()
            if any(text in line for line in lines):
                return lines
    process.kill()
    raise AssertionError(f"never logged {text!r}; log was:\n" + output.decode("utf-8", "replace"))


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM the server and return its exit code, 0 for a clean stop."""
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    # After a clean shutdown, twistd re-raises the signal that stopped it, as Unix daemons do.
    return 0 if code == -signal.SIGTERM else code


def test_plugin_is_listed() -> None:
    out = subprocess.run([TWISTD, "--help"], capture_output=True, text=True, check=True).stdout
    assert "mailstack" in out


def test_starts_on_embedded_defaults_and_prints_demo_user(tmp_path: Path) -> None:
    # As the README's quick start runs it, except that every listener takes a free port, so a
    # server already running on this machine cannot get in the way.
    process = start(tmp_path, *ANY_PORT)
    lines = wait_for(process, "mailstack ready")
    assert stop(process) == 0
    log = "\n".join(lines)
    assert "Created demo user demo@localhost with password" in log
    assert "self-signed" in log.lower()
    data = tmp_path / "mailstack-data"
    entries = [
        line for line in (data / "passwd").read_text().splitlines() if not line.startswith("#")
    ]
    assert len(entries) == 1 and entries[0].startswith("demo@localhost:$scrypt$")
    assert (data / "passwd").stat().st_mode & 0o077 == 0
    assert (data / "mail" / "localhost" / "demo" / "cur").is_dir()

    # A second start reuses everything and prints no password.
    process = start(tmp_path, *ANY_PORT)
    lines = wait_for(process, "mailstack ready")
    assert stop(process) == 0
    assert "Created demo user" not in "\n".join(lines)


def test_bad_config_stops_before_start(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[store]\nbackend = 'mysql'\n")
    result = subprocess.run(
        [TWISTD, "-n", "--pidfile=", "mailstack", "--config", str(tmp_path / "bad.toml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "store.backend: must be one of maildir, memory, not 'mysql'" in output
    assert "Traceback" not in output
    assert not (tmp_path / "mailstack-data").exists()


def test_non_editable_install_shows_the_plugin(tmp_path: Path) -> None:
    """`pip install .` (not only -e) must put twisted/plugins/mailstack_plugin.py where twistd looks."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO)],
        check=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert (target / "twisted" / "plugins" / "mailstack_plugin.py").is_file()
    assert not (target / "twisted" / "__init__.py").exists()
    # -S: no site-packages .pth files, so the editable install of this checkout is out of sight;
    # the installed copy and the venv's own libraries are all there is.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]]),
    }
    script = (
        "import sys; from twisted.scripts.twistd import run; sys.argv=['twistd','--help']; run()"
    )
    result = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert "mailstack" in result.stdout, result.stdout + result.stderr
    check = "import twisted_mail_stack; print(twisted_mail_stack.__file__)"
    where = subprocess.run([sys.executable, "-S", "-c", check], capture_output=True, text=True,
                           env=env, cwd=tmp_path, check=True).stdout  # fmt: skip
    assert where.startswith(str(target))
