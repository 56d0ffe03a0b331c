"""Shared fixtures. Tests that need the real faces in ../shared/data skip with a
visible reason where it is absent (a user's clone); CI always has it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

needs_data = pytest.mark.skipif(not (DATA / "300w").is_dir(), reason=f"real face data not found at {DATA}")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "300w").is_dir():
        pytest.skip(f"real face data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def detector():
    """The default pipeline (``DEFAULT_DETECTOR``: the learned detector)."""
    import facekeypoints as fk

    return fk.KeypointDetector()


@pytest.fixture(scope="session")
def haar():
    """The pipeline with the original write-up's Haar cascade (``detector="haar"``)."""
    import facekeypoints as fk

    return fk.KeypointDetector(detector="haar")


@pytest.fixture(scope="session")
def val_300w(data_dir):
    """300-W faces of the validation split (photo-disjoint from training)."""
    from facekeypoints.training.data.landmarks import load_300w, split_by_group

    samples = load_300w(data_dir / "300w")
    return split_by_group(samples, 0.15, 0)[1]
