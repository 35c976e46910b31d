"""The job protocol lives in :mod:`inference.jobs` (``inference`` may not import ``viewer``)."""

from inference.jobs import CancelCheck, Cancelled, CancelToken, Progress, check_cancel, report

__all__ = ["Progress", "CancelCheck", "check_cancel", "report", "CancelToken", "Cancelled"]
