"""The fixtures of the real topologies (fixtures.py) are a plugin of the whole test session:
``pytest_plugins`` in tests/conftest.py loads them once, for this folder and for the
conformance suite alike (importing them here too would make pytest see each fixture twice)."""
