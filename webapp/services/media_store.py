"""W1's media store: where the files customers send are kept, behind one small interface.

`MEDIA_STORE_URL` chooses it:
- empty, `file:///some/folder` or a plain path: files on disk (the default, `instance/media`: what
  `make run` uses, for one machine);
- `s3://bucket/prefix?endpoint_url=http://…&region=…&addressing_style=path`: any S3-compatible object
  store, shared by every web and worker machine; credentials come from the usual AWS variables
  (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, or a profile / instance role).

Files go in from a file object and come out as chunks, never whole in memory; a read may ask for a byte
range (audio and video seek with Range requests). Keys are made by the caller (services/media.py) and
never come from a request.
"""
from __future__ import annotations

import io
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app

CHUNK = 64 * 1024
KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,254}")


class StoreError(Exception):
    """The store could not keep or give back a file (disk full, bucket unreachable…): worth retrying."""


class NotStored(StoreError):
    """No file under that key."""


@dataclass
class Blob:
    """A file (or a range of it) being read: `size` bytes in `chunks`; close() if not read to the end."""

    size: int
    chunks: Iterator[bytes]
    _close: Any = None

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def read_all(self) -> bytes:
        """For small files only (thumbnails, tests)."""
        try:
            return b"".join(self.chunks)
        finally:
            self.close()


def check_key(key: str) -> str:
    if not KEY.fullmatch(key) or ".." in key.split("/") or "//" in key:
        raise ValueError(f"not a media key: {key!r}")
    return key


class DiskStore:
    """Files under one folder; each written to a temporary name and renamed, so a reader never sees half."""

    kind = "disk"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"DiskStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, fileobj: IO[bytes], content_type: str) -> int:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        written = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as out:
                while chunk := fileobj.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{self!r}: cannot write {key}: {exc}") from exc
        return written

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise NotStored(key) from None
        except OSError as exc:
            raise StoreError(f"{self!r}: cannot read {key}: {exc}") from exc

    def read(self, key: str, start: int = 0, end: int | None = None) -> Blob:
        """Bytes start..end (inclusive; end None: to the end of the file)."""
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise NotStored(key) from None
        except OSError as exc:
            raise StoreError(f"{self!r}: cannot read {key}: {exc}") from exc
        total = os.fstat(handle.fileno()).st_size
        last = total - 1 if end is None else min(end, total - 1)
        length = max(0, last - start + 1)
        handle.seek(start)

        def chunks() -> Iterator[bytes]:
            left = length
            try:
                while left > 0:
                    chunk = handle.read(min(CHUNK, left))
                    if not chunk:
                        break
                    left -= len(chunk)
                    yield chunk
            finally:
                handle.close()

        return Blob(length, chunks(), handle.close)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    """An S3-compatible bucket (AWS S3, MinIO, Ceph, Garage, R2…), objects under an optional prefix."""

    kind = "s3"

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, addressing_style: str | None = None):
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        style = addressing_style or ("path" if endpoint_url else "auto")
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None,
            config=BotoConfig(s3={"addressing_style": style}, retries={"max_attempts": 3, "mode": "standard"},
                              connect_timeout=5, read_timeout=30))

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, key: str, exc: Exception) -> StoreError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in (
                "NoSuchKey", "404", "NotFound"):
            return NotStored(key)
        return StoreError(f"{self!r}: {key}: {exc}")

    def put(self, key: str, fileobj: IO[bytes], content_type: str) -> int:
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        start = fileobj.tell()
        size = fileobj.seek(0, os.SEEK_END) - start
        fileobj.seek(start)
        try:
            # Large files go up in parts of 8 MiB, read from the file object as they go. s3transfer closes
            # the file it is given: the caller's stays open (it makes a thumbnail from it next).
            self.client.upload_fileobj(_KeptOpen(fileobj), self.bucket, self._key(key),
                                       ExtraArgs={"ContentType": content_type or "application/octet-stream"},
                                       Config=TransferConfig(multipart_threshold=8 * 1024 * 1024,
                                                             use_threads=False))
        except (BotoCoreError, ClientError) as exc:
            raise self._error(key, exc) from exc
        return size

    def size(self, key: str) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except (BotoCoreError, ClientError) as exc:
            raise self._error(key, exc) from exc

    def read(self, key: str, start: int = 0, end: int | None = None) -> Blob:
        from botocore.exceptions import BotoCoreError, ClientError

        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            answer = self.client.get_object(**args)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(key, exc) from exc
        body = answer["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()

        return Blob(int(answer["ContentLength"]), chunks(), body.close)

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._error(key, exc) from exc


class _KeptOpen(io.RawIOBase):
    """A seekable file object whose close() leaves the underlying file open."""

    def __init__(self, raw: IO[bytes]):
        super().__init__()
        self.raw = raw

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self.raw.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


MediaStore = DiskStore | S3Store


def open_store(url: str, default_root: str | Path) -> MediaStore:
    """The store a MEDIA_STORE_URL names (see the module docstring); a URL it cannot read is refused."""
    url = (url or "").strip()
    if not url:
        return DiskStore(default_root)
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        path = unquote(parts.path if parts.scheme else url)
        if not path:
            raise ValueError(f"MEDIA_STORE_URL {url!r}: no folder given")
        return DiskStore(path)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"MEDIA_STORE_URL {url!r}: no bucket (s3://bucket/prefix)")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint_url", "region", "addressing_style"}
        if unknown:
            raise ValueError(f"MEDIA_STORE_URL {url!r}: unknown setting {', '.join(sorted(unknown))} "
                             "(known: endpoint_url, region, addressing_style)")
        return S3Store(parts.netloc, unquote(parts.path), endpoint_url=query.get("endpoint_url"),
                       region=query.get("region"), addressing_style=query.get("addressing_style"))
    raise ValueError(f"MEDIA_STORE_URL {url!r}: use a folder, file:///folder or s3://bucket/prefix")


def current() -> MediaStore:
    """This app's store, opened on first use."""
    store = current_app.extensions.get("conversa_media_store")
    if store is None:
        store = current_app.extensions["conversa_media_store"] = open_store(
            current_app.config.get("MEDIA_STORE_URL", ""), Path(current_app.instance_path) / "media")
    return store
