#!/usr/bin/env python3
"""Turns the downloaded sources (see README.md here) into the JSON schemas kubeconform reads.

    make-schemas.py kubernetes <kubernetes-validate schema dir> <out dir> <kind-file>...
    make-schemas.py crd <out dir> <CRD YAML>...

kubernetes: kubernetes-validate ships one schema per kind whose `$ref`s point into a shared
`_definitions.json` (`/api/_definitions.json#/$defs/...`). kubeconform reads one file per kind,
so each kind is written "standalone": the kind's schema with the transitive closure of the
definitions it uses copied into its own `$defs`, every `$ref` rewritten to `#/$defs/...`.
The schemas are already strict (`additionalProperties: false` on every object with properties).

crd: each served version of each CustomResourceDefinition becomes
`<group>/<kind lower-case>_<version>.json`: its `openAPIV3Schema`, made strict the way
kubeconform's own openapi2jsonschema.py does (`additionalProperties: false` on every object
that lists `properties` and neither sets `additionalProperties` nor keeps unknown fields),
`nullable: true` turned into a `null` type, and `apiVersion`/`kind` pinned with an `enum`.
"""

import copy
import json
import os
import re
import sys

import yaml

REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(.+)$")


def kubernetes(source, out, kinds):
    with open(os.path.join(source, "_definitions.json")) as f:
        definitions = json.load(f)["$defs"]
    os.makedirs(out, exist_ok=True)
    for kind_file in kinds:
        with open(os.path.join(source, kind_file)) as f:
            schema = json.load(f)
        needed = {}

        def rewrite(node):
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    m = REF.match(ref)
                    if not m:
                        sys.exit(f"{kind_file}: unexpected $ref {ref}")
                    name = m.group(1)
                    node["$ref"] = f"#/$defs/{name}"
                    if name not in needed:
                        needed[name] = None
                        needed[name] = rewrite(copy.deepcopy(definitions[name]))
                for key, value in node.items():
                    if key != "$ref":
                        node[key] = rewrite(value)
            elif isinstance(node, list):
                return [rewrite(v) for v in node]
            return node

        schema = rewrite(schema)
        schema.pop("$id", None)
        schema["$defs"] = dict(sorted(needed.items()))
        with open(os.path.join(out, kind_file), "w") as f:
            json.dump(schema, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"{out}/{kind_file}: {len(needed)} definitions")


def strict(node):
    if isinstance(node, list):
        return [strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: strict(v) for k, v in node.items()}
    if node.pop("nullable", False):
        t = node.get("type")
        if isinstance(t, str):
            node["type"] = [t, "null"]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    return node


def crd(out, files):
    for path in files:
        with open(path) as f:
            documents = [d for d in yaml.safe_load_all(f) if d]
        for document in documents:
            if document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                schema = strict(version["schema"]["openAPIV3Schema"])
                props = schema.setdefault("properties", {})
                props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
                props["kind"] = {"type": "string", "enum": [kind]}
                schema["$schema"] = "http://json-schema.org/draft-07/schema#"
                directory = os.path.join(out, group)
                os.makedirs(directory, exist_ok=True)
                target = os.path.join(directory, f"{kind.lower()}_{version['name']}.json")
                with open(target, "w") as f:
                    json.dump(schema, f, indent=1, sort_keys=True)
                    f.write("\n")
                print(f"{target}: from {os.path.basename(path)}")


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "kubernetes":
        kubernetes(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "crd":
        crd(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
