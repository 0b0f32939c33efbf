"""The ConnectWise API contract: what the real API (SPEC 2025.8) accepts and answers, for every resource we use.

One data file, ``connectwise-2025.8.json`` beside this module, transcribed from the official OpenAPI description
(see its ``source`` and docs/connectwise/REFERENCE.md): for each resource path the component schema (field names,
JSON types, nullability, enums, maximum lengths, the fields required on create), the operations the product
uses, and the ``system/*`` and discovery answers. Entries the SPEC does not have say ``x-assumption``.

It is the single source for:

- the sandbox: which fields a ``conditions`` query may name (``condition_fields``), which collections
  ``childConditions`` / ``customFieldConditions`` reach (``collections``), and the validation of POST/PUT/PATCH
  bodies (``body_problems``: a wrong JSON type is ``kind == "type"``, answered with ConnectWise's conversion error);
- the scenario loader: a record the real API could not return is refused with its JSON path (``record_problems``);
- the contract tests: every answer of the sandbox and every request body of a repair plan (``answer_problems``).

Validation uses the ``jsonschema`` library (Draft 7, the dialect the SPEC's OpenAPI 3.0 schemas are closest to)
on "closed" copies of the schemas: an object may carry only the properties its schema lists, because the API
serialises its own model and never adds fields.
"""

from __future__ import annotations

from .spec import (
    DATA_FILE,
    SPEC_VERSION,
    Resource,
    collections,
    condition_field_allowed,
    condition_fields,
    document,
    resource,
    resources,
    schema,
    system_paths,
    top_level_fields,
)
from .validate import (
    BODY,
    PARTIAL,
    RECORD,
    Problem,
    answer_problems,
    answer_shape,
    body_problems,
    patch_value_problems,
    record_problems,
    record_problems_of,
)

__all__ = [
    "BODY",
    "DATA_FILE",
    "PARTIAL",
    "RECORD",
    "SPEC_VERSION",
    "Problem",
    "Resource",
    "answer_problems",
    "answer_shape",
    "body_problems",
    "collections",
    "condition_field_allowed",
    "condition_fields",
    "document",
    "patch_value_problems",
    "record_problems",
    "record_problems_of",
    "resource",
    "resources",
    "schema",
    "system_paths",
    "top_level_fields",
]
