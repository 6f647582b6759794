"""The OpenAPI document served by the sidecar: every operation documented with examples, auth and error bodies."""

from __future__ import annotations


def resolve(doc, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def has_example(doc, schema) -> bool:
    schema = resolve(doc, schema)
    if not isinstance(schema, dict):
        return False
    if schema.get("examples") or schema.get("example") is not None:
        return True
    return any(has_example(doc, s) for s in schema.get("anyOf", []) if s.get("type") != "null")


def test_every_operation_is_documented_with_examples(api):
    doc = api.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"]}
    operations = [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]
    assert len(operations) == 22
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert "422" not in op["responses"], where  # validation errors are 400 with the error body
        exempt = path in ("/healthz", "/readyz")
        assert op["security"] == ([] if exempt else [{"bearerAuth": []}]), where
        assert op.get("x-friday-roles"), where
        if "requestBody" in op:
            [(media, content)] = op["requestBody"]["content"].items()
            assert media == "application/json", where
            assert has_example(doc, content["schema"]), f"{where}: request body without example"
        ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
        for media, content in ok.get("content", {}).items():
            assert content.get("example") is not None or has_example(doc, content["schema"]), f"{where}: {media} without example"
        if not exempt:
            for code in ("400", "401", "403", "503"):
                schema = op["responses"][code]["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith("/ErrorBody"), where


def test_stream_parameters_exclude_channels(api):
    doc = api.get("/openapi.json").json()
    param = next(p for p in doc["paths"]["/api/v1/streams/{stream}/status"]["get"]["parameters"] if p["name"] == "stream")
    assert param["schema"]["not"] == {"enum": ["agent.completed", "file.uploaded"]}
