"""OpenAPI (drf-spectacular): the problem details every error answers with (§4), the helper that
documents them on each operation, and the schema post-processing hook."""

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from config.http.exceptions import PROBLEM_CONTENT_TYPE

Problem = inline_serializer(
    name="Problem",
    fields={
        "type": serializers.CharField(help_text="A URI reference naming the code, e.g. /problems/not_found."),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.CharField(help_text="not_found, invalid, insufficient_capacity, busy, ..."),
        "errors": serializers.DictField(
            required=False, child=serializers.JSONField(), help_text="invalid: the messages of each field."
        ),
        "resource": serializers.CharField(required=False, help_text="resource_overflow, counter_drift"),
        "host": serializers.CharField(
            required=False, help_text="insufficient_capacity, counter_drift, host_unavailable: its name"
        ),
        "scheduling": serializers.CharField(required=False, help_text="host_unavailable: the host's scheduling"),
        "hosts_considered": serializers.IntegerField(
            required=False, help_text="no_host_available: every host the placement looked at"
        ),
        "excluded": serializers.DictField(
            required=False,
            child=serializers.IntegerField(),
            help_text="no_host_available: reason (scheduling, region, cpu_cores, memory_bytes, disk_bytes, "
            "node_count) -> hosts it excluded",
        ),
        "command_id": serializers.IntegerField(required=False, help_text="node_busy: the command the host works on"),
        "command_status": serializers.CharField(
            required=False, help_text="node_busy, command_closed: that command's status"
        ),
        "state": serializers.CharField(required=False, help_text="invalid_state: the current state"),
        "shortfalls": serializers.ListField(
            required=False,
            child=inline_serializer(
                name="Shortfall",
                fields={
                    "resource": serializers.CharField(),
                    "requested": serializers.IntegerField(),
                    "available": serializers.IntegerField(),
                },
            ),
        ),
    },
)

_PROBLEM_DESCRIPTIONS = {
    400: "`invalid`: malformed body, unknown or wrongly typed field, unknown query parameter, bad filter or cursor",
    401: "`not_authenticated`: no or bad credentials",
    403: "`permission_denied`: lacking the permission (force needs hosts.overcommit_host)",
    404: "`not_found`: the node, image or host does not exist",
    409: "`already_on_image`, `insufficient_capacity`, `counter_drift`, `node_busy`, `command_closed`, "
    "`invalid_state`, `host_unavailable` or `no_host_available`",
    411: "`length_required`: a chunked body where the server cannot tell where it ends (send Content-Length)",
    413: "`request_too_large`: body past the size limit",
    415: "`unsupported_media_type`: the body is not application/json",
    422: "`incompatible_image`, `invalid_image_config` or `resource_overflow`",
    503: "`busy`: the database could not serve the request now (see Retry-After)",
}


def problems(*statuses: int) -> dict:
    """extend_schema(responses=...) entries: each status (and any other) as problem details."""
    responses = {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(Problem, description=_PROBLEM_DESCRIPTIONS[status])
        for status in statuses
    }
    responses[("default", PROBLEM_CONTENT_TYPE)] = OpenApiResponse(Problem, description="Any other error")
    return responses


def refuse_unknown_request_fields(result, generator, request, public):
    """SPECTACULAR_SETTINGS POSTPROCESSING_HOOKS: request bodies, and the objects nested in
    them (a create's `placement`), allow no other properties, as the API refuses unknown fields."""
    schemas = result.get("components", {}).get("schemas", {})
    pending = []
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                pending.append(media.get("schema", {}))
    seen = set()
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/") and ref not in seen:
                seen.add(ref)
                target = schemas[ref.rsplit("/", 1)[1]]
                if target.get("type") == "object" or "properties" in target:
                    target["additionalProperties"] = False
                pending.append(target)
            for key in ("properties", "items", "allOf", "oneOf", "anyOf"):
                if key in node:
                    value = node[key]
                    pending.extend(value.values() if key == "properties" else [value])
    return result


def nullable_references(result, generator, request, public):
    """SPECTACULAR_SETTINGS POSTPROCESSING_HOOKS: a nullable reference that admits null.

    drf-spectacular writes a nullable nested object as `allOf: [$ref] + nullable: true`, which
    under OpenAPI 3.0 does not admit null (`nullable` only widens a `type` next to it, and null
    fails the referenced object's `type`), so validators refuse the very answers the API gives.
    Rewritten as `oneOf: [$ref, {type: object, nullable: true, enum: [null]}]`: one branch or the
    other, which every 3.0 validator reads the same way."""

    def rewrite(node):
        if isinstance(node, dict):
            all_of = node.get("allOf")
            if node.get("nullable") is True and isinstance(all_of, list) and len(all_of) == 1:
                del node["allOf"], node["nullable"]
                node["oneOf"] = [all_of[0], NULL_ONLY]
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for item in node:
                rewrite(item)

    rewrite(result)
    return result


#: The schema that admits null and nothing else (OpenAPI 3.0 has no `type: "null"`).
NULL_ONLY = {"type": "object", "nullable": True, "enum": [None]}
