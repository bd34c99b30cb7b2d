"""Base classes of the high-level objects: a :class:`Model` and the :class:`Collection` that makes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from micado.api.client import SubmitterClient

M = TypeVar("M", bound="Model")


class Model:
    """An object on the server, identified by ``id``; details are read lazily.

    Args:
        attrs: what is known of it (at least ``id``); ``None`` values mean "not read yet".
        client: the low-level API client.
        collection: the collection that made it.
    """

    def __init__(self, attrs: dict[str, Any], client: SubmitterClient, collection: Collection[Any]) -> None:
        self.attrs = attrs
        self.client = client
        self.collection = collection

    @property
    def id(self) -> str:
        """The object's id on the server."""
        model_id: str = self.attrs["id"]
        return model_id

    def reload(self) -> None:
        """Read the object's details from the server again."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and other.id == self.id

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.id))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r}>"


class Collection(Generic[M]):
    """A set of models of one kind on the server.

    Args:
        client: the low-level API client the models use.
    """

    model: type[M]

    def __init__(self, client: SubmitterClient) -> None:
        self.client = client

    def prepare_model(self, attrs: dict[str, Any]) -> M:
        """Wrap ``attrs`` into a model bound to this collection."""
        return self.model(attrs=attrs, client=self.client, collection=self)
