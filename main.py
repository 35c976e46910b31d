"""Launcher: the same as the ``clinical-viewer`` console script."""

from viewer.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
