"""Feature length versus duration: does fps / feat_stride / num_frames fit the features?

A video of N = duration x fps frames, cut into windows of ``num_frames`` frames every
``feat_stride`` frames, has between (N - num_frames) / feat_stride + 1 features (windows that
fit) and N / feat_stride + 1 (the last windows padded). A wrong fps, stride or window moves
every video out of that range by the same factor: the commonest cause of near-zero mAP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from tal_lab.data.annotations import VideoRecord
from tal_lab.data.errors import Problem

__all__ = ["LengthCheck", "check_lengths", "fit_stride_and_window", "expected_steps"]

# A video is off when its length leaves the expected range by more than this many steps ...
LENGTH_TOLERANCE_STEPS = 2
# ... and by more than this fraction of the expected length.
LENGTH_TOLERANCE_FRACTION = 0.02
# When more than this fraction of the videos is off, the settings are wrong for the folder.
FOLDER_MISMATCH_FRACTION = 0.5
# Durations are given to 0.01 s: about a third of a frame at 30 fps; allow half a frame.
DURATION_ROUNDING_FRAMES = 0.5
# A fitted stride this close to an integer is reported as that integer.
INTEGER_STRIDE_TOLERANCE = 0.05


def expected_steps(duration_sec: float, fps: float, feat_stride: float, num_frames: float) -> tuple[float, float]:
    """(fewest, most) feature steps a video can have: windows that fit, or padded windows."""
    frames = duration_sec * fps
    return max(1.0, (frames - num_frames) / feat_stride + 1.0), frames / feat_stride + 1.0


def fit_stride_and_window(frames: Sequence[float], steps: Sequence[int]) -> tuple[float, float] | None:
    """Fit frames = feat_stride x (steps - 1) + num_frames + u over videos; None with fewer
    than two distinct lengths.

    u is the part of a video after its last full window, in [0, feat_stride) frames. The
    stride is a least-squares slope (refitted once without videos more than 5 % off). With an
    integer stride S, each video bounds the window: num_frames lies in (N - S T, N - S T + S].
    Among the integers in every video's bounds (within the half-frame rounding of durations),
    multiples of S are preferred (extractors use windows of 8, 16, 32 or 64 frames at strides
    that divide them: THUMOS14 16 / 4, ActivityNet 16 / 16, EPIC 32 / 16), then the one closest
    to the least-squares estimate. Without any (padded features, noisy durations)
    the least-squares intercept less the mean of u, (S - 1) / 2, is returned; padded features
    give a window near or below 0.
    """
    t, n = np.asarray(steps, dtype=np.float64), np.asarray(frames, dtype=np.float64)
    if len(np.unique(t)) < 2:
        return None
    slope, intercept = np.polyfit(t - 1.0, n, 1)
    inliers = np.abs(n - (slope * (t - 1.0) + intercept)) <= 0.05 * np.maximum(n, 1.0)
    if inliers.sum() >= 2 and len(np.unique(t[inliers])) >= 2 and not inliers.all():
        t, n = t[inliers], n[inliers]
        slope, intercept = np.polyfit(t - 1.0, n, 1)
    window = intercept - 0.5 * (slope - 1.0)
    stride = float(round(slope))
    if stride >= 1 and abs(slope - stride) <= INTEGER_STRIDE_TOLERANCE * stride:
        low = float(np.max(n - stride * t)) - DURATION_ROUNDING_FRAMES
        high = float(np.min(n - stride * t)) + stride + DURATION_ROUNDING_FRAMES
        candidates = np.arange(np.floor(low) + 1, np.floor(high) + 1)
        multiples = candidates[candidates % stride == 0]
        if len(multiples):
            candidates = multiples
        if len(candidates):
            return stride, float(candidates[np.argmin(np.abs(candidates - window))])
    return float(slope), float(window)


@dataclass
class LengthCheck:
    """Per-video feature lengths against the settings, the folder verdict and suggestions."""

    feat_stride: float
    num_frames: float
    rows: list[tuple[str, int, float, float]] = field(default_factory=list)  # (video, T, lo, hi)
    off: list[tuple[str, int, float, float]] = field(default_factory=list)
    fit: tuple[float, float] | None = None
    fitted_settings: bool = False
    folder_mismatch: bool = False
    suggestions: list[str] = field(default_factory=list)

    @property
    def median_ratio(self) -> float:
        """Median of actual / expected length (expected = middle of the range); 1 fits."""
        if not self.rows:
            return float("nan")
        return float(np.median([t / (0.5 * (lo + hi)) for _, t, lo, hi in self.rows]))

    def summary(self) -> str:
        how = "fitted" if self.fitted_settings else "configured"
        return (f"median ratio {self.median_ratio:.3f} over {len(self.rows)} videos (feature steps / steps implied "
                f"by duration x fps with {how} feat_stride {self.feat_stride:g}, num_frames {self.num_frames:g}); "
                f"{len(self.off)} video(s) outside the expected range")

    def problems(self, json_file: str) -> list[Problem]:
        if self.folder_mismatch:
            return [Problem("error", "settings_mismatch", json_file, None,
                            f"{len(self.off)} of {len(self.rows)} videos have feature lengths that do not fit "
                            f"fps / feat_stride {self.feat_stride:g} / num_frames {self.num_frames:g} "
                            f"(median ratio {self.median_ratio:.3f}): the settings do not fit these features")]
        return [Problem("warning", "length", json_file, vid,
                        f"{t} feature steps, expected {lo:.0f} to {hi:.0f} from its duration and fps "
                        f"(ratio {t / (0.5 * (lo + hi)):.3f})") for vid, t, lo, hi in self.off]


def check_lengths(
    lengths: Sequence[tuple[VideoRecord, int]], settings: Mapping[str, Any], fitted: bool = False
) -> LengthCheck:
    """Compare every video's feature length with its duration, fps and the settings.

    Args:
        lengths: (video, number of feature steps in its file) pairs.
        settings: the dataset settings (feat_stride, num_frames, default_fps).
        fitted: the settings are unknown (no config): fit feat_stride / num_frames instead.
    """
    frames = [v.duration_sec * v.fps for v, _ in lengths]
    steps = [t for _, t in lengths]
    fit = fit_stride_and_window(frames, steps)
    stride, window = settings.get("feat_stride"), settings.get("num_frames")
    if fitted or stride is None or window is None:
        if fit is None:
            return LengthCheck(float("nan"), float("nan"), fit=None, fitted_settings=True)
        stride, window = _round_fit(fit)
        fitted = True
    check = LengthCheck(float(stride), float(window), fit=fit, fitted_settings=fitted)
    for video, t in lengths:
        lo, hi = expected_steps(video.duration_sec, video.fps, check.feat_stride, check.num_frames)
        row = (video.video_id, t, lo, hi)
        check.rows.append(row)
        slack_lo = max(LENGTH_TOLERANCE_STEPS, LENGTH_TOLERANCE_FRACTION * lo)
        slack_hi = max(LENGTH_TOLERANCE_STEPS, LENGTH_TOLERANCE_FRACTION * hi)
        if t < lo - slack_lo or t > hi + slack_hi:
            check.off.append(row)
    if fitted and fit is not None:
        check.suggestions.append(
            f"no config: fitted feat_stride {fit[0]:.2f}, num_frames {fit[1]:.1f} from the feature lengths "
            f"of {len(check.rows)} videos; write feat_stride: {check.feat_stride:g}, num_frames: "
            f"{check.num_frames:g} (and the fps, input_dim, num_classes) into a config")
    elif check.rows and len(check.off) > FOLDER_MISMATCH_FRACTION * len(check.rows):
        check.folder_mismatch = True
        check.suggestions += _fixes(check, lengths, settings)
    return check


def _round_fit(fit: tuple[float, float]) -> tuple[float, float]:
    stride, window = fit
    if abs(stride - round(stride)) <= INTEGER_STRIDE_TOLERANCE * stride:
        stride = float(round(stride))
    return stride, float(max(1, round(window)))


def _fixes(check: LengthCheck, lengths: Sequence[tuple[VideoRecord, int]], settings: Mapping[str, Any]) -> list[str]:
    out = []
    if check.fit is None:
        # One length only: the window cannot be fitted; solve for the stride with the configured one.
        strides = [(v.duration_sec * v.fps - check.num_frames) / (t - 1) for v, t in lengths if t > 1]
        if strides:
            stride = float(np.median(strides))
            rounded = round(stride) if abs(stride - round(stride)) <= INTEGER_STRIDE_TOLERANCE * stride else stride
            out.append(f"settings that fit these features: feat_stride: {rounded:g} with num_frames "
                       f"{check.num_frames:g} (every video has the same length, so the window cannot be fitted)")
    else:
        stride, window = _round_fit(check.fit)
        out.append(f"settings that fit these features: feat_stride: {stride:g}, num_frames: {window:g} "
                   f"(least-squares fit over {len(lengths)} videos: feat_stride {check.fit[0]:.2f}, "
                   f"num_frames {check.fit[1]:.1f}), at the fps used now")
    # The fps that fits the configured stride and window, for windows that fit (as the fit assumes).
    tail = 0.5 * (check.feat_stride - 1)
    fps_fit = float(np.median([(check.feat_stride * (t - 1) + check.num_frames + tail) / v.duration_sec
                               for v, t in lengths]))
    if math.isfinite(fps_fit):
        text = (f"or keep feat_stride {check.feat_stride:g} / num_frames {check.num_frames:g}: the features fit "
                f"an fps of about {fps_fit:.2f}")
        if settings.get("default_fps") is not None:
            text += f" (dataset.default_fps is {settings['default_fps']}; null uses each video's fps from the JSON)"
        out.append(text)
    return out
