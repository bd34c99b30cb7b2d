"""Glance's state: images, public (every project sees them) or private to their owner."""

from __future__ import annotations

import threading
from typing import Any

from micado.testing.openstack.core import Caller, EmulatorError, new_id, now

__all__ = ["ImageBackend"]


class ImageBackend:
    """The images of the emulated Glance.

    Args:
        lock: the cloud's lock.

    Attributes:
        images_by_id: every image, by id (names may repeat, as in Glance).
    """

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.images_by_id: dict[str, dict[str, Any]] = {}

    def add(self, name: str, *, owner: str, image_id: str | None = None, visibility: str = "public") -> str:
        """Register an image.

        Args:
            name: its name.
            owner: the owning project.
            image_id: its id; a new one by default.
            visibility: ``public`` (every project sees it) or ``private`` (its owner only).

        Returns:
            The image id.
        """
        image_id = image_id or new_id()
        with self.lock:
            self.images_by_id[image_id] = {
                "id": image_id, "name": name, "status": "active", "visibility": visibility,
                "disk_format": "qcow2", "container_format": "bare", "min_disk": 0,
                "min_ram": 0, "size": 1073741824, "virtual_size": None, "checksum": None,
                "os_hash_algo": None, "os_hash_value": None, "os_hidden": False,
                "owner": owner, "protected": False, "tags": [],
                "created_at": now(), "updated_at": now(),
                "self": f"/v2/images/{image_id}", "file": f"/v2/images/{image_id}/file",
                "schema": "/v2/schemas/image",
            }
        return image_id

    def remove(self, name_or_id: str) -> None:
        """Delete every image with this id or name.

        Args:
            name_or_id: the image's id or name.
        """
        with self.lock:
            for image_id, image in list(self.images_by_id.items()):
                if name_or_id in (image_id, image["name"]):
                    del self.images_by_id[image_id]

    @staticmethod
    def _visible(image: dict[str, Any], caller: Caller) -> bool:
        return image["visibility"] in ("public", "community") or image["owner"] == caller.project_id

    def visible(self, caller: Caller) -> list[dict[str, Any]]:
        """The images the caller's project sees (copies).

        Args:
            caller: who asks.

        Returns:
            The images.
        """
        with self.lock:
            return [dict(i) for i in self.images_by_id.values() if self._visible(i, caller)]

    def get(self, caller: Caller, image_id: str) -> dict[str, Any]:
        """One image the caller's project sees (a copy).

        Args:
            caller: who asks.
            image_id: the image's id.

        Returns:
            The image.

        Raises:
            EmulatorError: 404 when there is no such image or the project does not see it.
        """
        with self.lock:
            image = self.images_by_id.get(image_id)
            if image is None or not self._visible(image, caller):
                raise EmulatorError(404, f"No image found with ID {image_id}")
            return dict(image)
