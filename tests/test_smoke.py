from chainml.registry import Registry


def test_registry_roundtrip(registry: Registry) -> None:
    registry.register(kind="source", name="a", version="1")
    registry.register(kind="model", name="m", version="1", inputs=["a"])
    assert [n.name for n in registry.nodes()] == ["a", "m"]
