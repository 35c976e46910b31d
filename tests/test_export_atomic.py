"""Atomic export writes: full disk and read-only folders give ExportError and leave nothing behind."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from viewer.errors import ExportError
from viewer.export import atomic
from viewer.export.atomic import atomic_open, atomic_path, write_bytes_atomic, write_with

ROOT = Path(__file__).resolve().parents[1]


class TestWriteBytesAtomic:
    def test_writes_and_replaces(self, tmp_path: Path) -> None:
        p = tmp_path / "sub" / "a.bin"
        write_bytes_atomic(p, b"one")
        assert p.read_bytes() == b"one"
        write_bytes_atomic(p, b"two")
        assert p.read_bytes() == b"two"
        assert sorted(x.name for x in p.parent.iterdir()) == ["a.bin"]

    def test_disk_full_keeps_old_file_and_no_temp(self, tmp_path: Path, monkeypatch) -> None:
        p = tmp_path / "report.pdf"
        p.write_bytes(b"previous export")
        real_fsync = os.fsync

        def full(fd: int) -> None:  # the kernel reports ENOSPC at write-back / fsync time
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(atomic.os, "fsync", full)
        with pytest.raises(ExportError, match=r"disk is full.*report\.pdf|report\.pdf.*disk is full"):
            write_bytes_atomic(p, b"x" * 1000)
        monkeypatch.setattr(atomic.os, "fsync", real_fsync)
        assert p.read_bytes() == b"previous export"
        assert [x.name for x in tmp_path.iterdir()] == ["report.pdf"]

    def test_disk_full_during_write(self, tmp_path: Path) -> None:
        p = tmp_path / "seg.dcm"

        def writer(tmp: Path) -> None:
            tmp.write_bytes(b"half")  # something written, then the disk fills up
            raise OSError(errno.ENOSPC, "No space left on device")

        with pytest.raises(ExportError, match="disk is full") as ei:
            write_with(p, writer)
        assert "seg.dcm" in str(ei.value) and "nothing was written" in str(ei.value)
        assert list(tmp_path.iterdir()) == []

    def test_read_only_errno_message(self, tmp_path: Path) -> None:
        def writer(tmp: Path) -> None:
            raise OSError(errno.EROFS, "Read-only file system")

        with pytest.raises(ExportError, match="not writable"):
            write_with(tmp_path / "x.png", writer)
        assert list(tmp_path.iterdir()) == []

    def test_other_exception_cleans_up_and_propagates(self, tmp_path: Path) -> None:
        with pytest.raises(ZeroDivisionError), atomic_open(tmp_path / "t.txt", "w") as fh:
            fh.write("partial")
            1 / 0  # noqa: B018
        assert list(tmp_path.iterdir()) == []

    def test_writer_that_writes_nothing(self, tmp_path: Path) -> None:
        with pytest.raises(ExportError, match="produced no file"):
            write_with(tmp_path / "n.bin", lambda tmp: None)

    def test_target_folder_is_a_file(self, tmp_path: Path) -> None:
        (tmp_path / "f").write_text("I am a file")
        with pytest.raises(ExportError, match="f"):
            write_bytes_atomic(tmp_path / "f" / "out.bin", b"1")

    def test_temp_keeps_nifti_suffix(self, tmp_path: Path) -> None:
        with atomic_path(tmp_path / "labels.nii.gz") as tmp:
            assert tmp.name.endswith(".nii.gz") and tmp.parent == tmp_path
            tmp.write_bytes(b"x")
        assert (tmp_path / "labels.nii.gz").read_bytes() == b"x"

    def test_bad_mode(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "a", "ab"):
            pass


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
class TestReadOnlyFolder:
    SCRIPT = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from viewer.errors import ExportError
        from viewer.export.atomic import write_bytes_atomic
        folder = Path(sys.argv[1])
        try:
            write_bytes_atomic(folder / "key.png", b"data")
        except ExportError as exc:
            print("EXPORTERROR", exc)
            sys.exit(0)
        print("NO ERROR")
        sys.exit(3)
        """
    )

    def test_chmod_read_only(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="ro-export-"))
        try:
            os.chmod(folder, 0o555)
            cmd = [sys.executable, "-c", self.SCRIPT, str(folder)]
            if os.geteuid() == 0:  # root ignores permissions: run the write as 'nobody'
                setpriv = shutil.which("setpriv")
                if setpriv is None:
                    pytest.skip("running as root and setpriv is missing: cannot test permissions")
                cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
            env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(folder)}
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, cwd="/")
            if os.geteuid() == 0 and "ModuleNotFoundError" in r.stderr:
                pytest.skip("the interpreter's packages are not readable by 'nobody'")
            assert r.returncode == 0, r.stdout + r.stderr
            assert "EXPORTERROR" in r.stdout and "not writable" in r.stdout, r.stdout
            assert str(folder) in r.stdout
            assert list(folder.iterdir()) == []
        finally:
            os.chmod(folder, 0o755)
            shutil.rmtree(folder, ignore_errors=True)
