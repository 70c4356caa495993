"""Real photos for tests and benchmarks, fetched from the package registry like the models.

`group_t1` is insightface's sample `t1.jpg` (1280 x 886, six people at a table, faces about
100 px wide), shipped inside the `insightface==2.1` source archive on PyPI. `fetch_samples()`
downloads that archive with pip (no dependencies, not built), checks its sha256 and the
image's, and stores the image under `<models directory>/samples/`. It is idempotent: an intact
sample is not downloaded again. No rclpy here.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vtb_detector.models import FETCH_COMMAND, ModelError, models_dir, sha256_file


@dataclass(frozen=True)
class SampleSpec:
    name: str
    package: str          # pip requirement of the source archive
    archive: str          # its file name
    archive_sha256: str
    member: str           # path of the image inside the archive
    sha256: str           # of the image
    filename: str         # stored as
    description: str


SAMPLES = {
    s.name: s for s in (
        SampleSpec("group_t1", "insightface==2.1", "insightface-2.1.tar.gz",
                   "776cbd36b70f5f2ae1a026101cfb80387f0b2280a0dbaf073f8d3ed69f554e01",
                   "insightface-2.1/insightface/data/images/t1.jpg",
                   "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
                   "group_t1.jpg",
                   "insightface sample t1.jpg: 1280x886, six people, faces about 100 px wide"),
    )
}


class SampleError(ModelError):
    """A sample image is missing or corrupt; the message names the command that fixes it."""


def samples_dir(directory: Path | None = None) -> Path:
    """Where the samples live: `samples/` in the models directory (`directory` if given)."""
    return Path(directory or models_dir()) / "samples"


def _hint(directory: Path) -> str:
    return (f"run `{FETCH_COMMAND}` to fetch it (samples directory: {directory}; "
            f"set VTB_MODELS_DIR to use another)")


def sample_path(name: str, directory: Path | None = None) -> Path:
    """Path of a sample image after checking it is there and intact."""
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; known: {', '.join(SAMPLES)}")
    spec, where = SAMPLES[name], samples_dir(directory)
    path = where / spec.filename
    if not path.is_file():
        raise SampleError(f"sample image {path} is missing; {_hint(where)}")
    got = sha256_file(path)
    if got != spec.sha256:
        raise SampleError(f"sample image {path} is corrupt: sha256 {got[:12]}... expected "
                          f"{spec.sha256[:12]}...; {_hint(where)}")
    return path


def load_sample_rgb(name: str, directory: Path | None = None):
    """The sample as an RGB uint8 array (H, W, 3)."""
    import cv2
    bgr = cv2.imread(str(sample_path(name, directory)), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def verify_samples(directory: Path | None = None) -> list[str]:
    """Every problem with the samples, as messages; empty when all is well."""
    problems = []
    for name in SAMPLES:
        try:
            sample_path(name, directory)
        except SampleError as e:
            problems.append(str(e))
    return problems


def samples_fetched(directory: Path | None = None) -> bool:
    """Cheap presence check (no checksums), for the CLI's start."""
    return all((samples_dir(directory) / s.filename).is_file() for s in SAMPLES.values())


def _download(spec: SampleSpec, dest: Path) -> Path:
    """The source archive through pip (its cache makes re-runs fast). pip prepares the sdist's
    metadata (a setuptools call) but builds and installs nothing."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    "--disable-pip-version-check", "-q", spec.package, "-d", str(dest)], check=True)
    archive = dest / spec.archive
    if not archive.is_file():
        raise SampleError(f"pip did not produce {archive}")
    return archive


def fetch_samples(directory: Path | None = None, echo=print, archives: dict | None = None,
                  force: bool = False) -> Path:
    """Download and check every sample missing or corrupt in `samples_dir(directory)`.
    `archives` maps a sample's name to an already downloaded archive (tests, offline use).
    Returns the samples directory."""
    where = samples_dir(directory)
    for spec in SAMPLES.values():
        if not force:
            try:
                sample_path(spec.name, directory)
                echo(f"samples: {spec.name} up to date in {where}")
                continue
            except SampleError:
                pass
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="vtb-samples-") as tmp:
            tmp = Path(tmp)
            archive = Path((archives or {}).get(spec.name) or _download(spec, tmp))
            got = sha256_file(archive)
            if got != spec.archive_sha256:
                raise SampleError(f"{archive}: sha256 {got} does not match {spec.package}'s {spec.archive_sha256}")
            with tarfile.open(archive, "r:gz") as tar:
                try:
                    data = tar.extractfile(spec.member).read()
                except KeyError:
                    raise SampleError(f"{spec.member} is not in {archive.name}") from None
            digest = hashlib.sha256(data).hexdigest()
            if digest != spec.sha256:
                raise SampleError(f"{spec.member} in {archive.name}: sha256 {digest} expected {spec.sha256}")
            # written beside its place and renamed only when complete: an interrupted fetch
            # leaves no half image under the real name
            staged = where / (spec.filename + ".part")
            staged.write_bytes(data)
            os.replace(staged, where / spec.filename)
        echo(f"samples: {spec.name}: {spec.member} ({spec.sha256[:12]}) -> {where / spec.filename}")
    return where
