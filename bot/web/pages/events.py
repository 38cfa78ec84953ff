"""The events page (being written)."""


def add(server) -> None:  # noqa: ANN001
    """Declares no route yet."""
